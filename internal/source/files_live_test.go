package source

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// collector gathers what a files source hands over.
type collector struct {
	mu     sync.Mutex
	text   map[string]*bytes.Buffer // by name
	whole  map[string][]byte
	last   map[string]Position // by object
	chunks []Chunk
}

func newCollector() *collector {
	return &collector{text: map[string]*bytes.Buffer{}, whole: map[string][]byte{}, last: map[string]Position{}}
}

func (c *collector) emit(ctx context.Context, ch Chunk) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.chunks = append(c.chunks, ch)
	c.last[ch.Position.Object] = ch.Position
	if ch.Open != nil {
		r, err := ch.Open(ctx)
		if err != nil {
			return err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		c.whole[filepath.Base(ch.Name)] = b
		return nil
	}
	name := filepath.Base(ch.Name)
	if c.text[name] == nil {
		c.text[name] = &bytes.Buffer{}
	}
	c.text[name].Write(ch.Data)
	return nil
}

func (c *collector) textOf(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.text[name]; b != nil {
		return b.String()
	}
	return ""
}

func (c *collector) positions() []Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Position
	for _, p := range c.last {
		out = append(out, p)
	}
	return out
}

func filesSource(t *testing.T, paths ...string) *FilesLive {
	t.Helper()
	node := &yaml.Node{}
	y := "name: local\ntype: files\npoll_interval: 10ms\npaths: [" + strings.Join(paths, ", ") + "]\n"
	if err := yaml.Unmarshal([]byte(y), node); err != nil {
		t.Fatal(err)
	}
	var lc LiveConfig
	if err := node.Content[0].Decode(&lc); err != nil {
		t.Fatal(err)
	}
	l, err := NewLive(lc, LiveDeps{})
	if err != nil {
		t.Fatal(err)
	}
	return l.(*FilesLive)
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func appendFile(t *testing.T, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestFilesFollow: lines are handed over as they are completed, a file
// that appears under a glob is read, a rotated file's new file is read
// from its start, a gzip file is read whole once complete, and a restart
// from the positions hands over only what came after.
func TestFilesFollow(t *testing.T) {
	dir := t.TempDir()
	src := filesSource(t, filepath.Join(dir, "*.log"), filepath.Join(dir, "*.gz"))
	col := newCollector()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, nil, col.emit) }()

	a := filepath.Join(dir, "a.log")
	appendFile(t, a, "version srcaddr\n2 10.0.0.1\n2 10.0")
	eventually(t, "the complete lines", func() bool { return col.textOf("a.log") == "version srcaddr\n2 10.0.0.1\n" })
	appendFile(t, a, ".0.2\n")
	eventually(t, "the line once completed", func() bool { return strings.HasSuffix(col.textOf("a.log"), "2 10.0.0.2\n") })

	// Rotation: a.log moves to a.log.1 (outside the glob), a new a.log.
	if err := os.Rename(a, a+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, a, "version srcaddr\n2 10.0.0.3\n")
	eventually(t, "the new file from its start", func() bool {
		return strings.HasSuffix(col.textOf("a.log"), "2 10.0.0.2\nversion srcaddr\n2 10.0.0.3\n")
	})

	// Renamed out of the paths and back: not read again.
	if err := os.Rename(a, a+".2"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := os.Rename(a+".2", a); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if got := col.textOf("a.log"); got != "version srcaddr\n2 10.0.0.1\n2 10.0.0.2\nversion srcaddr\n2 10.0.0.3\n" {
		t.Errorf("after a file went and came back: %q", got)
	}

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("version srcaddr\n2 10.0.0.4\n"))
	zw.Close()
	if err := os.WriteFile(filepath.Join(dir, "b.gz"), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the gzip file, whole", func() bool {
		col.mu.Lock()
		defer col.mu.Unlock()
		return bytes.Equal(col.whole["b.gz"], gz.Bytes())
	})
	st := src.Status()
	if !st.Connected || st.Objects != 2 || st.LagBytes != 0 {
		t.Errorf("status %+v: want connected, 2 objects, no lag", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Restart from the positions: only what came after.
	appendFile(t, a, "2 10.0.0.5\n")
	src2 := filesSource(t, filepath.Join(dir, "*.log"), filepath.Join(dir, "*.gz"))
	col2 := newCollector()
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { done <- src2.Run(ctx2, col.positions(), col2.emit) }()
	eventually(t, "the appended line after the restart", func() bool { return col2.textOf("a.log") == "2 10.0.0.5\n" })
	time.Sleep(50 * time.Millisecond)
	cancel2()
	<-done
	col2.mu.Lock()
	defer col2.mu.Unlock()
	if len(col2.whole) != 0 || len(col2.chunks) != 1 {
		t.Errorf("after the restart: %d chunks, %d whole files; want only the new line", len(col2.chunks), len(col2.whole))
	}
	if c := col2.chunks[0]; c.Line != 3 || string(c.Header) != "version srcaddr\n" {
		t.Errorf("resumed chunk: line %d, header %q; want line 3 and the file's header", c.Line, c.Header)
	}
}

func TestFilesTruncated(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.log")
	appendFile(t, p, "2 10.0.0.1\n2 10.0.0.2\n")
	src := filesSource(t, dir)
	col := newCollector()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx, nil, col.emit)
	eventually(t, "the lines", func() bool { return col.textOf("a.log") == "2 10.0.0.1\n2 10.0.0.2\n" })
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, p, "2 10.0.0.9\n")
	eventually(t, "the file read again from the start", func() bool {
		return col.textOf("a.log") == "2 10.0.0.1\n2 10.0.0.2\n2 10.0.0.9\n"
	})
}

func TestFilesConfigErrors(t *testing.T) {
	for _, y := range []string{
		"name: x\ntype: files\n",
		"name: x\ntype: files\npaths: [a]\nbogus: 1\n",
		"name: x\ntype: nosuch\n",
	} {
		node := &yaml.Node{}
		if err := yaml.Unmarshal([]byte(y), node); err != nil {
			t.Fatal(err)
		}
		var lc LiveConfig
		if err := node.Content[0].Decode(&lc); err != nil {
			t.Fatal(err)
		}
		if _, err := NewLive(lc, LiveDeps{}); err == nil {
			t.Errorf("%q: no error", y)
		}
	}
}
