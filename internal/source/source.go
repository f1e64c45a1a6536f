// Package source turns the PATH arguments of the command line into flow log
// inputs: files (plain or gzip), directories (walked), globs, "-" for
// standard input, and s3://bucket/prefix listings.
//
// Expand only finds the inputs; it does not read them. The scanner in
// package flowlog opens each input and recognises gzip and Parquet by their
// first bytes.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// Options configures Expand.
type Options struct {
	// Stdin is read for the argument "-"; nil means os.Stdin.
	Stdin io.Reader
	// Region, Profile and EndpointURL configure the S3 client for
	// s3:// arguments, on top of the SDK's default configuration chain
	// (environment, shared config files, instance role). EndpointURL
	// selects an S3-compatible server, addressed path-style.
	Region, Profile, EndpointURL string
	// Logger receives debug messages about what each argument expanded
	// to; nil discards them.
	Logger *slog.Logger
	// S3PageSize is the number of keys asked for per ListObjectsV2 call;
	// 0 means the S3 default (1,000).
	S3PageSize int32
	// S3Client, when set, is used instead of a client built from Region,
	// Profile and EndpointURL.
	S3Client *s3.Client
	// Errors receives what a directory walk or a glob found but could not
	// read (a dangling symbolic link, a directory without permission): it
	// is skipped and reported as a LineError naming the path, as an
	// unreadable file is when it is opened. nil reports them as warnings
	// on Logger.
	Errors flowlog.ErrorSink
}

// Expand turns command-line PATH arguments into inputs, in the order given:
//
//   - a file is one input;
//   - a directory is walked recursively in lexical order, which is time
//     order for AWS's AWSLogs/{account}/vpcflowlogs/{region}/YYYY/MM/DD/ and
//     Hive-style (aws-account-id=…/year=…/month=…) layouts; files and
//     directories whose name starts with '.' are skipped;
//   - a pattern with *, ? or [ that is not an existing file is a glob
//     (filepath.Glob); matching nothing is an error;
//   - "-" is standard input, and may be given once;
//   - s3://bucket/prefix is every object under the prefix, in key order
//     (s3://bucket/key, when such an object exists, is that object alone).
//
// A path named twice, or reached twice (a file inside a directory also
// given), is one input. A missing file, an empty directory or an S3 prefix
// without objects is an error naming it. What a directory or a glob holds
// but cannot be read (a dangling symbolic link, an unreadable directory) is
// skipped and reported to Options.Errors, so that one bad entry does not
// stop a run over thousands of files.
func Expand(ctx context.Context, args []string, opts Options) ([]flowlog.Input, error) {
	if len(args) == 0 {
		return nil, errors.New("no input given: name files, directories, globs, - (standard input) or s3://bucket/prefix")
	}
	e := &expander{ctx: ctx, opts: opts, seen: make(map[string]bool), log: opts.Logger}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	for _, arg := range args {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		before := len(e.inputs)
		var err error
		switch {
		case arg == "":
			err = errors.New("empty input path")
		case arg == "-":
			err = e.stdin()
		case isS3(arg):
			err = e.s3(arg)
		default:
			err = e.local(arg)
		}
		if err != nil {
			return nil, err
		}
		e.log.Debug("expanded input", "arg", arg, "inputs", len(e.inputs)-before)
	}
	return e.inputs, nil
}

type expander struct {
	ctx      context.Context
	opts     Options
	log      *slog.Logger
	inputs   []flowlog.Input
	seen     map[string]bool // cleaned absolute paths and s3://bucket/key
	sawStdin bool
	s3c      *s3Lister
}

// add appends an input unless the same key was added before.
func (e *expander) add(key string, in flowlog.Input) {
	if e.seen[key] {
		e.log.Debug("input named twice; reading it once", "input", in.Name)
		return
	}
	e.seen[key] = true
	e.inputs = append(e.inputs, in)
}

func (e *expander) stdin() error {
	if e.sawStdin {
		return errors.New("standard input (-) given more than once")
	}
	e.sawStdin = true
	r := e.opts.Stdin
	if r == nil {
		r = os.Stdin
	}
	var opened atomic.Bool
	e.inputs = append(e.inputs, flowlog.Input{
		Name: "-",
		Size: -1,
		Open: func(context.Context) (io.ReadCloser, error) {
			if opened.Swap(true) {
				return nil, errors.New("standard input can only be read once")
			}
			return io.NopCloser(r), nil
		},
	})
	return nil
}

// local expands a file, a directory or a glob.
func (e *expander) local(arg string) error {
	info, err := os.Stat(arg)
	if err == nil {
		return e.path(arg, info)
	}
	if !errors.Is(err, fs.ErrNotExist) || !hasMeta(arg) {
		return fmt.Errorf("cannot read input: %w", err)
	}
	matches, gerr := filepath.Glob(arg)
	if gerr != nil {
		return fmt.Errorf("bad pattern %q: %w", arg, gerr)
	}
	if len(matches) == 0 {
		return fmt.Errorf("no files match %q", arg)
	}
	for _, m := range matches {
		info, err := os.Stat(m)
		if err != nil {
			e.skip(m, "cannot follow symbolic link", err)
			continue
		}
		if err := e.path(m, info); err != nil {
			return err
		}
	}
	return nil
}

// skip reports an entry of a directory or glob that cannot be read.
func (e *expander) skip(p, what string, err error) {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is said once
	}
	msg := fmt.Sprintf("skipped: %s: %v", what, err)
	if e.opts.Errors != nil {
		e.opts.Errors.Skip(&flowlog.LineError{Source: p, Msg: msg})
	} else {
		e.log.Warn(msg, "path", p)
	}
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[`) }

// path adds a file, or the files of a directory.
func (e *expander) path(p string, info fs.FileInfo) error {
	if info.IsDir() {
		return e.dir(p)
	}
	if !info.Mode().IsRegular() && info.Mode()&(fs.ModeNamedPipe|fs.ModeCharDevice) == 0 {
		return fmt.Errorf("cannot read %s: not a regular file", p)
	}
	e.file(p, info)
	return nil
}

func (e *expander) file(p string, info fs.FileInfo) {
	size := info.Size()
	if !info.Mode().IsRegular() { // a named pipe (<(zcat …)) or a device
		size = -1
	}
	key := p
	if abs, err := filepath.Abs(p); err == nil {
		key = abs
	}
	e.add(key, flowlog.Input{
		Name: p,
		Size: size,
		Open: func(context.Context) (io.ReadCloser, error) {
			f, err := os.Open(p)
			if err != nil {
				return nil, err // the scanner reports it with the name
			}
			return f, nil
		},
	})
}

// dir walks a directory in lexical order, skipping hidden entries below
// it, and following symbolic links to files (not to directories). Entries
// that cannot be read are skipped and reported.
func (e *expander) dir(root string) error {
	before := len(e.inputs)
	found, skipped := 0, 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// A directory that cannot be listed (WalkDir reports
			// it a second time, with the error), or an entry gone
			// since.
			skipped++
			e.skip(p, "cannot read directory", err)
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return e.ctx.Err()
		}
		info, err := d.Info()
		if err != nil {
			skipped++
			e.skip(p, "cannot read", err)
			return nil
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			if info, err = os.Stat(p); err != nil {
				skipped++
				e.skip(p, "cannot follow symbolic link", err)
				return nil
			}
		}
		if !info.Mode().IsRegular() {
			e.log.Debug("skipping what is not a regular file", "path", p, "mode", info.Mode().String())
			return nil
		}
		found++
		e.file(p, info)
		return nil
	})
	if err != nil {
		return err
	}
	if found == 0 && skipped == 0 {
		return fmt.Errorf("no files in directory %s", root)
	}
	e.log.Debug("walked directory", "dir", root, "files", found, "new", len(e.inputs)-before)
	return nil
}
