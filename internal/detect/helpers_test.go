package detect

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/synth"
)

// input wraps bytes as a scanner input.
func input(name string, data []byte) flowlog.Input {
	return flowlog.Input{Name: name, Size: int64(len(data)), Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

// generated is one run of the generator.
type generated struct {
	text    []byte
	labels  []synth.Label
	home    []netip.Prefix
	threats []netip.Prefix
	office  netip.Prefix
	ifaces  []*synth.Interface
}

func generate(t testing.TB, cfg synth.Config) *generated {
	t.Helper()
	g := synth.New(cfg)
	var buf bytes.Buffer
	if err := g.WriteText(&buf, true); err != nil {
		t.Fatal(err)
	}
	out := &generated{text: buf.Bytes(), labels: g.Labels(), home: g.HomeNetworks(), office: g.OfficeNetwork(), ifaces: g.Interfaces()}
	for _, a := range g.ThreatList() {
		out.threats = append(out.threats, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}

// runEngine scans data with the given chunk size and workers and returns
// the engine after Flush.
func runEngine(t testing.TB, o Options, chunkSize, workers int, inputs ...flowlog.Input) *Engine {
	t.Helper()
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	s := &flowlog.Scanner{Workers: workers, ChunkSize: chunkSize}
	if err := e.Run(context.Background(), s, inputs); err != nil {
		t.Fatal(err)
	}
	e.Flush()
	return e
}

func splitLines(b []byte) []string {
	var out []string
	for _, l := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
		out = append(out, string(l))
	}
	return out
}

func fields(s string) []string { return strings.Fields(s) }
