package synth

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/gzip"
)

// S3Period is how often S3 delivery publishes a file.
const S3Period = 5 * time.Minute

// maxFileRecords splits a 5-minute period's records over several files,
// as AWS does for large volumes.
const maxFileRecords = 1000000

// FlowLogID returns the flow log ID used in S3 object names (fl-…),
// derived from the seed.
func (g *Generator) FlowLogID() string {
	h := fnv.New64a()
	fmt.Fprintf(h, "flow-log/%d", g.cfg.Seed)
	v := h.Sum64()
	const digits = "0123456789abcdef"
	b := []byte("fl-0")
	for range 16 {
		b = append(b, digits[v&15])
		v >>= 4
	}
	return string(b)
}

// S3Key returns the key (relative to the bucket prefix) of the part-th
// file of the 5-minute period ending at t, as S3 delivery names it:
// AWSLogs/{account}/vpcflowlogs/{region}/YYYY/MM/DD/{account}_vpcflowlogs_{region}_{fl-id}_{YYYYMMDDTHHmmZ}_{hash}.log.gz
// (.log.parquet for Parquet).
func (g *Generator) S3Key(t time.Time, part int, parquet bool) string {
	t = t.UTC()
	acct, region, fl := g.cfg.AccountID, g.cfg.Region, g.FlowLogID()
	stamp := t.Format("20060102T1504Z")
	h := fnv.New32a()
	fmt.Fprintf(h, "%d/%s/%d", g.cfg.Seed, stamp, part)
	ext := ".log.gz"
	if parquet {
		ext = ".log.parquet"
	}
	name := acct + "_vpcflowlogs_" + region + "_" + fl + "_" + stamp + "_" + fmt.Sprintf("%08x", h.Sum32()) + ext
	return "AWSLogs/" + acct + "/vpcflowlogs/" + region + "/" + t.Format("2006/01/02") + "/" + name
}

// WriteS3 writes the records under dir in S3 delivery's layout: one file
// per 5-minute period of delivery (records that arrive late land in a later
// file, as they do in S3), gzip text with a header line, or Parquet. It
// returns the paths written, in order.
func (g *Generator) WriteS3(dir string, parquet bool) ([]string, error) {
	var (
		paths   []string
		cur     *s3File
		curEnd  int64
		part    int
		inFile  int
		startTS = g.cfg.Start.Unix()
		period  = int64(S3Period / time.Second)
	)
	closeCur := func() error {
		if cur == nil {
			return nil
		}
		err := cur.close()
		cur = nil
		return err
	}
	err := g.run(func(r *Record, win int) error {
		ws := startTS + int64(win)*windowSec
		end := (ws/period + 1) * period // end of the 5-minute period
		if cur != nil && (end != curEnd || inFile >= maxFileRecords) {
			if end == curEnd {
				part++
			} else {
				part = 0
			}
			if err := closeCur(); err != nil {
				return err
			}
		}
		if cur == nil {
			path := filepath.Join(dir, filepath.FromSlash(g.S3Key(time.Unix(end, 0), part, parquet)))
			f, err := g.createS3File(path, parquet)
			if err != nil {
				return err
			}
			cur, curEnd, inFile = f, end, 0
			paths = append(paths, path)
		}
		inFile++
		return cur.add(r)
	})
	if cerr := closeCur(); err == nil {
		err = cerr
	}
	if err != nil {
		return paths, fmt.Errorf("cannot write S3 layout under %s: %w", dir, err)
	}
	return paths, nil
}

// s3File is one file being written.
type s3File struct {
	path string
	f    *os.File
	bw   *bufio.Writer
	gz   *gzip.Writer
	tw   *textWriter
	pw   *parquetWriter
}

func (g *Generator) createS3File(path string, parquet bool) (*s3File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("cannot create directory: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cannot create file: %w", err)
	}
	sf := &s3File{path: path, f: f}
	if parquet {
		sf.bw = bufio.NewWriterSize(f, 256<<10)
		sf.pw = g.newParquetWriter(sf.bw)
		return sf, nil
	}
	sf.gz = gzip.NewWriter(f)
	sf.bw = bufio.NewWriterSize(sf.gz, 256<<10)
	sf.tw = g.newTextWriter()
	if _, err := sf.bw.WriteString(g.cfg.Format.Header() + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot write %s: %w", path, err)
	}
	return sf, nil
}

func (sf *s3File) add(r *Record) error {
	if sf.pw != nil {
		if err := sf.pw.add(r); err != nil {
			return fmt.Errorf("cannot write %s: %w", sf.path, err)
		}
		return nil
	}
	b := sf.tw.appendRecord(sf.bw.AvailableBuffer(), r)
	b = append(b, '\n')
	if _, err := sf.bw.Write(b); err != nil {
		return fmt.Errorf("cannot write %s: %w", sf.path, err)
	}
	return nil
}

func (sf *s3File) close() error {
	var err error
	if sf.pw != nil {
		err = sf.pw.close()
	}
	if err == nil {
		err = sf.bw.Flush()
	}
	if err == nil && sf.gz != nil {
		err = sf.gz.Close()
	}
	if cerr := sf.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", sf.path, err)
	}
	return nil
}

// WriteGzipText writes the records as one gzip stream of text with a
// header line, as a single S3 delivery file.
func (g *Generator) WriteGzipText(w io.Writer) error {
	gz := gzip.NewWriter(w)
	if err := g.WriteText(gz, true); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("cannot write flow logs: %w", err)
	}
	return nil
}
