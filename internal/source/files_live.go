package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FilesConfig is the configuration of a files source.
type FilesConfig struct {
	// Paths are files, directories (walked) and globs, followed as they
	// grow, rotate and appear; relative paths are relative to the
	// configuration file.
	Paths []string `yaml:"paths,flow"`
	// PollInterval is how often the paths are looked at; default 250ms.
	PollInterval time.Duration `yaml:"poll_interval"`
	// ChunkBytes is the most bytes handed over at once; default 4 MiB.
	ChunkBytes int `yaml:"chunk_bytes"`
}

const (
	defaultPoll       = 250 * time.Millisecond
	defaultChunkBytes = 4 << 20
	identityBytes     = 64 // the first bytes hashed into a file's identity
	doneToken         = "done"
	maxGone           = 4096 // forgotten files remembered
)

// NewFilesLive builds a files source: it follows the files its paths name
// (plain text as it grows, line by line; gzip and Parquet files whole,
// once their size has stopped changing), by identity (device, inode and a
// hash of the first bytes), so that a renamed file is not read twice and a
// new file under an old name is read from its start. A file that shrinks
// (copytruncate) is read again from its start.
func NewFilesLive(cfg LiveConfig, deps LiveDeps) (Live, error) {
	var fc FilesConfig
	if err := cfg.Decode(&fc); err != nil {
		return nil, err
	}
	if len(fc.Paths) == 0 {
		return nil, fmt.Errorf("line %d: sources.%s: a files source needs paths", cfg.Line, cfg.Name)
	}
	for i, p := range fc.Paths {
		if p == "" || p == "-" || isS3(p) {
			return nil, fmt.Errorf("line %d: sources.%s: paths[%d] %q: give files, directories or globs (an s3 source follows buckets)", cfg.Line, cfg.Name, i, p)
		}
		if !filepath.IsAbs(p) && deps.Dir != "" {
			fc.Paths[i] = filepath.Join(deps.Dir, p)
		}
	}
	if fc.PollInterval <= 0 {
		fc.PollInterval = defaultPoll
	}
	if fc.ChunkBytes <= 0 {
		fc.ChunkBytes = defaultChunkBytes
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &FilesLive{name: cfg.Name, cfg: fc, log: deps.Logger, now: deps.Now,
		files: map[devIno]*followed{}, gone: map[devIno]*followed{}}, nil
}

// FilesLive is the files source (see NewFilesLive).
type FilesLive struct {
	name string
	cfg  FilesConfig
	log  *slog.Logger
	now  func() time.Time

	mu        sync.Mutex
	files     map[devIno]*followed
	gone      map[devIno]*followed // forgotten files, in case they are named again
	connected bool
	bytesRead int64
	lastErr   string
	lastErrAt time.Time
}

var _ Replayer = (*FilesLive)(nil)

type devIno struct{ dev, ino uint64 }

// followed is one file being followed.
type followed struct {
	id     string
	path   string
	offset int64 // bytes handed over
	size   int64 // size at the last look
	line   int   // line number of the byte at offset
	header []byte
	whole  bool // gzip or Parquet: handed over whole once complete
	done   bool
	stable int       // looks in a row without a size change (whole files)
	mtime  time.Time // modification time at the last look
}

// Identity returns a file's identity as the files source and flowguard
// detect record it: device and inode, and a hash of the first bytes, so
// that a new file that reuses an inode is not taken for the old one.
func Identity(path string) (id string, size int64, err error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	di, ok := devInoOf(info)
	if !ok {
		return "", 0, fmt.Errorf("%s: not a regular file", path)
	}
	id, err = identityOf(path, di, min(info.Size(), identityBytes))
	return id, info.Size(), err
}

func devInoOf(info fs.FileInfo) (devIno, bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || !info.Mode().IsRegular() {
		return devIno{}, false
	}
	return devIno{uint64(st.Dev), uint64(st.Ino)}, true //nolint:unconvert // Dev is int32 on some systems
}

// identityOf hashes the first n bytes of path: "dev:ino:n:hash".
func identityOf(path string, di devIno, n int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(f, buf); err != nil {
		return "", fmt.Errorf("cannot read %s: %w", path, err)
	}
	h := sha256.Sum256(buf)
	return fmt.Sprintf("%d:%d:%d:%s", di.dev, di.ino, n, hex.EncodeToString(h[:8])), nil
}

// sameFile reports whether the file at path is the one id names.
func sameFile(path string, di devIno, id string) bool {
	parts := strings.Split(id, ":")
	if len(parts) != 4 || parts[0] != strconv.FormatUint(di.dev, 10) || parts[1] != strconv.FormatUint(di.ino, 10) {
		return false
	}
	n, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return false
	}
	got, err := identityOf(path, di, n)
	return err == nil && got == id
}

// Replayable is true: the files are still on disk.
func (f *FilesLive) Replayable() bool { return true }

// Covered compares offsets; a whole file read once is covered by "done".
func (f *FilesLive) Covered(p Position, committed string) bool {
	if committed == doneToken {
		return true
	}
	if p.Token == doneToken {
		return false
	}
	end, err1 := strconv.ParseInt(p.Token, 10, 64)
	upTo, err2 := strconv.ParseInt(committed, 10, 64)
	return err1 == nil && err2 == nil && end <= upTo
}

// Run follows the paths until ctx is done.
func (f *FilesLive) Run(ctx context.Context, from []Position, emit Emit) error {
	resume := map[string]string{}
	for _, p := range from {
		resume[p.Object] = p.Token
	}
	t := time.NewTicker(f.cfg.PollInterval)
	defer t.Stop()
	for {
		if err := f.poll(ctx, resume, emit); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Commit has nothing to acknowledge: positions live in the store.
func (f *FilesLive) Commit(context.Context, []Position) error { return nil }

// Status describes the files followed.
func (f *FilesLive) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := Status{Name: f.name, Type: "files", Connected: f.connected, BytesRead: f.bytesRead,
		Objects: len(f.files), LastError: f.lastErr, LastErrorAt: f.lastErrAt}
	for _, fl := range f.files {
		tok := strconv.FormatInt(fl.offset, 10)
		if fl.done {
			tok = doneToken
		}
		st.Positions = append(st.Positions, Position{Object: fl.id, Token: tok, Name: fl.path})
		if unread := fl.size - fl.offset; !fl.done && unread > 0 {
			st.LagBytes += unread
			st.Lag = max(st.Lag, f.now().Sub(fl.mtime)) // how long unread bytes have waited, at least
		}
	}
	slices.SortFunc(st.Positions, func(a, b Position) int { return strings.Compare(a.Name, b.Name) })
	return st
}

func (f *FilesLive) fail(msg string, err error, args ...any) {
	f.log.Warn(msg, append(args, "err", err)...)
	f.mu.Lock()
	f.lastErr, f.lastErrAt = fmt.Sprintf("%s: %v", msg, err), f.now()
	f.mu.Unlock()
}

// paths lists the files the configured paths name now, sorted, as the
// batch commands expand them (Expand: directories walked, hidden entries
// skipped, globs). A path that names nothing yet is not an error: it may
// appear later.
func (f *FilesLive) paths(ctx context.Context) []string {
	seen := map[string]bool{}
	for _, p := range f.cfg.Paths {
		inputs, err := Expand(ctx, []string{p}, Options{Logger: f.log})
		if err != nil {
			f.log.Debug("nothing to follow yet", "path", p, "err", err)
			continue
		}
		for _, in := range inputs {
			seen[in.Name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// poll looks at every path once and hands over what is new.
func (f *FilesLive) poll(ctx context.Context, resume map[string]string, emit Emit) error {
	seen := map[devIno]bool{}
	defer func() {
		// Files no longer named by the paths (rotated away, deleted)
		// are forgotten.
		f.mu.Lock()
		for di, fl := range f.files {
			if !seen[di] && ctx.Err() == nil {
				f.log.Debug("file no longer followed", "path", fl.path, "id", fl.id)
				delete(f.files, di)
				if len(f.gone) >= maxGone {
					clear(f.gone)
				}
				f.gone[di] = fl
			}
		}
		f.mu.Unlock()
	}()
	for _, p := range f.paths(ctx) {
		if err := ctx.Err(); err != nil {
			return err
		}
		info, err := os.Stat(p)
		if err != nil {
			continue // gone since listed
		}
		di, ok := devInoOf(info)
		if !ok {
			continue
		}
		seen[di] = true
		f.mu.Lock()
		fl := f.files[di]
		f.mu.Unlock()
		if g := f.gone[di]; fl == nil && g != nil {
			delete(f.gone, di)
			if sameFile(p, di, g.id) { // named again: go on where it was
				fl = g
				f.mu.Lock()
				f.files[di] = fl
				f.mu.Unlock()
			}
		}
		if fl == nil {
			if info.Size() == 0 {
				continue // nothing to identify it by yet
			}
			if fl, err = f.follow(p, di, info.Size(), resume); err != nil {
				f.fail("cannot follow file", err, "path", p)
				continue
			}
		}
		f.mu.Lock()
		fl.mtime = info.ModTime()
		f.mu.Unlock()
		if err := f.read(ctx, fl, p, info.Size(), emit); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.connected = true
	f.mu.Unlock()
	return nil
}

// follow starts following a file, from its saved position if any.
func (f *FilesLive) follow(p string, di devIno, size int64, resume map[string]string) (*followed, error) {
	fl := &followed{path: p, line: 1, whole: wholeFile(p)}
	for id, tok := range resume {
		if !sameFile(p, di, id) {
			continue
		}
		fl.id = id
		if tok == doneToken {
			fl.done = true
		} else if off, err := strconv.ParseInt(tok, 10, 64); err == nil && off <= size {
			if err := fl.seek(off); err != nil {
				return nil, err
			}
		}
		delete(resume, id)
		break
	}
	if fl.id == "" {
		id, err := identityOf(p, di, min(size, identityBytes))
		if err != nil {
			return nil, err
		}
		fl.id = id
	}
	f.log.Info("following file", "path", p, "id", fl.id, "offset", fl.offset, "whole", fl.whole)
	f.mu.Lock()
	f.files[di] = fl
	f.mu.Unlock()
	return fl, nil
}

// seek resumes at off: the header and the line number are read again.
func (fl *followed) seek(off int64) error {
	fl.offset, fl.line, fl.header = off, 1, nil
	if off == 0 {
		return nil
	}
	r, err := os.Open(fl.path)
	if err != nil {
		return err
	}
	defer r.Close()
	buf := make([]byte, 1<<20)
	var read int64
	for read < off {
		n, err := r.Read(buf[:min(int64(len(buf)), off-read)])
		if fl.header == nil {
			if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 && read == 0 {
				fl.header = slices.Clone(buf[:i+1])
			}
		}
		fl.line += bytes.Count(buf[:n], []byte{'\n'})
		read += int64(n)
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", fl.path, err)
		}
	}
	return nil
}

// wholeFile reports whether a file is read whole (gzip, Parquet) by its
// name or its first bytes.
func wholeFile(p string) bool {
	if strings.HasSuffix(p, ".gz") || strings.HasSuffix(p, ".parquet") {
		return true
	}
	r, err := os.Open(p)
	if err != nil {
		return false
	}
	defer r.Close()
	var b [4]byte
	n, _ := io.ReadFull(r, b[:])
	return n >= 2 && b[0] == 0x1f && b[1] == 0x8b || n == 4 && string(b[:]) == "PAR1"
}

// read hands over what is new in a followed file.
func (f *FilesLive) read(ctx context.Context, fl *followed, p string, size int64, emit Emit) error {
	f.mu.Lock()
	fl.path = p
	grew := size != fl.size
	fl.size = size
	f.mu.Unlock()
	if fl.whole {
		if fl.done {
			return nil
		}
		if grew {
			fl.stable = 0
			return nil
		}
		if fl.stable++; fl.stable < 2 {
			return nil
		}
		c := Chunk{Object: fl.id, Name: p, Size: size, Arrived: f.now(),
			Open: func(context.Context) (io.ReadCloser, error) {
				r, err := os.Open(p)
				if err != nil {
					return nil, fmt.Errorf("cannot open input: %w", err)
				}
				return r, nil
			},
			Position: Position{Object: fl.id, Token: doneToken, Name: p}}
		if err := emit(ctx, c); err != nil {
			return err
		}
		f.mu.Lock()
		fl.done, f.bytesRead = true, f.bytesRead+size
		f.mu.Unlock()
		return nil
	}
	if size < fl.offset {
		f.log.Warn("file shrank: reading it again from the start", "path", p, "size", size, "offset", fl.offset)
		f.mu.Lock()
		fl.offset, fl.line, fl.header = 0, 1, nil
		f.mu.Unlock()
	}
	if size == fl.offset {
		return nil
	}
	r, err := os.Open(p)
	if err != nil {
		f.fail("cannot open file", err, "path", p)
		return nil
	}
	defer r.Close()
	for fl.offset < size {
		buf := make([]byte, min(int64(f.cfg.ChunkBytes), size-fl.offset))
		n, err := r.ReadAt(buf, fl.offset)
		if err != nil && !errors.Is(err, io.EOF) {
			f.fail("cannot read file", err, "path", p)
			return nil
		}
		buf = buf[:n]
		end := bytes.LastIndexByte(buf, '\n') + 1
		if end == 0 {
			if n < f.cfg.ChunkBytes {
				return nil // a line still being written
			}
			end = n // a line longer than a chunk: the decoder reports it
		}
		data := buf[:end]
		c := Chunk{Object: fl.id, Name: p, Data: data, Line: fl.line, Arrived: f.now(), Size: -1}
		if fl.offset > 0 {
			c.Header = fl.header
		}
		next := fl.offset + int64(end)
		c.Position = Position{Object: fl.id, Token: strconv.FormatInt(next, 10), Name: p}
		if err := emit(ctx, c); err != nil {
			return err
		}
		f.mu.Lock()
		if fl.offset == 0 {
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				fl.header = slices.Clone(data[:i+1])
			}
		}
		fl.line += bytes.Count(data, []byte{'\n'})
		fl.offset = next
		f.bytesRead += int64(end)
		f.mu.Unlock()
	}
	return nil
}
