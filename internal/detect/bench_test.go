package detect

import (
	"context"
	"net/netip"
	"runtime"
	"sync"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/synth"
)

var benchData struct {
	once sync.Once
	g    *generated
}

func benchGenerated(b *testing.B) *generated {
	benchData.once.Do(func() {
		cfg := synth.DefaultConfig()
		cfg.Records, cfg.Seed = 500000, 3
		benchData.g = generate(b, cfg)
	})
	return benchData.g
}

// BenchmarkDetect measures the whole of flowguard detect on one core:
// decoding, extraction and detection of generated v2 text.
func BenchmarkDetect(b *testing.B) {
	g := benchGenerated(b)
	o := Options{Settings: DefaultSettings(), Home: g.home, Threats: g.threats}
	in := input("gen.log", g.text)
	b.SetBytes(int64(len(g.text)))
	b.ResetTimer()
	var recs int64
	for range b.N {
		e, _ := New(o)
		s := &flowlog.Scanner{Workers: 1}
		if err := e.Run(context.Background(), s, []flowlog.Input{in}); err != nil {
			b.Fatal(err)
		}
		e.Flush()
		m := e.Metrics()
		recs += m.Records + m.NoData + m.SkipData
	}
	b.ReportMetric(float64(recs)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkEngine measures the detection state alone: flows already
// extracted, applied and judged.
func BenchmarkEngine(b *testing.B) {
	g := benchGenerated(b)
	o := Options{Settings: DefaultSettings(), Home: g.home, Threats: g.threats}
	e0, _ := New(o)
	var chunks []*chunk
	s := &flowlog.Scanner{Workers: 1}
	n := 0
	err := s.Scan(context.Background(), []flowlog.Input{input("gen.log", g.text)}, func(_ int, bt *flowlog.Batch) error {
		c := &chunk{}
		e0.cl.extract(bt, c)
		chunks = append(chunks, c)
		n += len(c.flows)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		e, _ := New(o)
		for _, c := range chunks {
			e.apply(c)
		}
		e.Flush()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}

// internetScan returns chunks of n single rejected probes from n distinct
// sources (IPv4, a quarter IPv6) to one of our hosts, within one window.
func internetScan(n int) []*chunk {
	const per = 16384
	var out []*chunk
	target := keyOf(netip.MustParseAddr("10.0.1.10"))
	for i := 0; i < n; i += per {
		c := &chunk{source: "scan"}
		for j := i; j < min(i+per, n); j++ {
			var src addrKey
			if j%4 == 3 {
				src = addrKey{hi: 0x2001_0db8_0000_0000 | uint64(j), lo: uint64(j) * 0x9e3779b9}
			} else {
				src = keyOf(netip.AddrFrom4([4]byte{byte(1 + j>>24), byte(j >> 16), byte(j >> 8), byte(j)}))
			}
			c.flows = append(c.flows, flow{src: src, dst: target, sport: 40000, dport: uint16(j),
				proto: 6, packets: 1, bytes: 44, start: 1795860000 + uint32(j%200), end: 1795860000 + uint32(j%200),
				action: flowlog.ActionReject, kind: kindInbound, bits: bitProbe})
		}
		out = append(out, c)
	}
	return out
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// bytesPerSource feeds an internet-wide scan of n sources and returns the
// heap held per tracked source.
func bytesPerSource(t testing.TB, n int) (float64, *Engine) {
	chunks := internetScan(n)
	set := DefaultSettings()
	set.MaxTrackedSources = 2 * n
	e, err := New(Options{Settings: set, Home: vpc})
	if err != nil {
		t.Fatal(err)
	}
	before := heapAfterGC()
	for _, c := range chunks {
		e.apply(c)
	}
	after := heapAfterGC()
	tracked := e.Metrics().TrackedSources
	runtime.KeepAlive(chunks)
	return float64(after-before) / float64(tracked), e
}

// TestMemoryPerSource checks the bound of 200 bytes per tracked source
// under a million distinct sources.
func TestMemoryPerSource(t *testing.T) {
	if testing.Short() {
		t.Skip("a million sources")
	}
	per, e := bytesPerSource(t, 1_000_000)
	if got := e.Metrics().TrackedSources; got != 1_000_000 {
		t.Fatalf("tracked %d sources, want 1000000", got)
	}
	t.Logf("%.0f bytes per tracked source", per)
	if per > 200 {
		t.Errorf("%.0f bytes per tracked source, want at most 200", per)
	}
	e.Flush()
	if rs := e.Results(); len(rs) != 0 {
		t.Errorf("single probes raised %d findings, e.g. %s", len(rs), rs[0].Title)
	}
}

// BenchmarkMemoryPerSource reports bytes per tracked source for a
// million-source scan.
func BenchmarkMemoryPerSource(b *testing.B) {
	for range b.N {
		per, _ := bytesPerSource(b, 1_000_000)
		b.ReportMetric(per, "B/source")
	}
}

// TestEvictionKeepsAttacks fills the table past its bound with single
// probes while a port scan runs, and expects the scan found and the
// noise evicted.
func TestEvictionKeepsAttacks(t *testing.T) {
	set := DefaultSettings()
	set.MaxTrackedSources = 10000
	e, err := New(Options{Settings: set, Home: vpc})
	if err != nil {
		t.Fatal(err)
	}
	scanner := keyOf(netip.MustParseAddr("198.51.100.23"))
	target := keyOf(netip.MustParseAddr("10.0.1.10"))
	noise := internetScan(50000)
	for i, c := range noise {
		scan := &chunk{source: "scan"}
		for p := 0; p < 10; p++ {
			scan.flows = append(scan.flows, flow{src: scanner, dst: target, sport: 40000, dport: uint16(1000 + i*10 + p),
				proto: 6, packets: 1, bytes: 44, start: 1795860000 + uint32(i), end: 1795860000 + uint32(i),
				action: flowlog.ActionReject, kind: kindInbound, bits: bitProbe})
		}
		e.apply(scan)
		e.apply(c)
	}
	e.Flush()
	m := e.Metrics()
	if m.Evicted == 0 || m.PeakTrackedSources > 10000+16384 {
		t.Errorf("metrics %+v: want evictions and a bounded table", m)
	}
	found := false
	for _, r := range e.Results() {
		if r.Type == TypePortscan && r.Actor.IP.String() == "198.51.100.23" {
			found = true
			if r.Evidence["distinct_ports"].(int64) != int64(10*len(noise)) {
				t.Errorf("scan lost probes: %v", r.Evidence)
			}
		}
	}
	if !found {
		t.Error("the port scan was evicted")
	}
}
