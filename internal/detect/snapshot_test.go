package detect

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/synth"
)

// chunksOf extracts data into chunks of flows, as Run hands them to apply.
func chunksOf(t testing.TB, e *Engine, data []byte, chunkSize int) []*chunk {
	t.Helper()
	var out []*chunk
	s := &flowlog.Scanner{Workers: 1, ChunkSize: chunkSize}
	err := s.Scan(context.Background(), []flowlog.Input{input("gen.log", data)}, func(_ int, b *flowlog.Batch) error {
		c := &chunk{}
		e.cl.extract(b, c)
		out = append(out, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// snapshotOf returns e's snapshot.
func snapshotOf(t testing.TB, e *Engine) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := e.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// resultsJSON is what a user compares: every finding as --explain prints
// it (ids, counts, first/last seen, evidence, samples, thresholds).
func resultsJSON(t testing.TB, rs []*Result) string {
	t.Helper()
	b, err := json.MarshalIndent(rs, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// snapshotCase is generated traffic and options that exercise every rule,
// the slow-reject table and eviction.
func snapshotCase(t testing.TB, records int, seed uint64) (*generated, Options) {
	cfg := synth.DefaultConfig()
	cfg.Records, cfg.Seed, cfg.Hard = records, seed, true
	cfg.Duration = time.Duration(records/200) * time.Minute // 3h20m at 40,000: the slow prober comes back
	g := generate(t, cfg)
	set := DefaultSettings()
	set.LearningPeriod = Duration(0) // baselines judge from the first windows
	set.MaxTrackedSources = 1000     // eviction happens
	o := Options{Settings: set, Home: g.home, Threats: g.threats,
		Expected: []ExpectedSource{{Ports: []uint16{22, 3389}, Sources: []netip.Prefix{g.office}}}}
	return g, o
}

// TestSnapshotRestoreEqualsUninterrupted is the property the daemon relies
// on: for generated traffic cut at many points, an engine fed the first
// part, snapshotted, restored and fed the rest raises exactly the findings
// (and metrics) of an engine fed everything, and at the cut a restored
// engine peeks the same early findings and snapshots to the same bytes.
func TestSnapshotRestoreEqualsUninterrupted(t *testing.T) {
	for _, seed := range []uint64{21, 22} {
		g, o := snapshotCase(t, 40000, seed)
		whole, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		chunks := chunksOf(t, whole, g.text, 64<<10)
		for _, c := range chunks {
			whole.apply(c)
		}
		whole.Flush()
		want := resultsJSON(t, whole.Results())
		wantMetrics := whole.Metrics()
		types := map[string]int{}
		for _, r := range whole.Results() {
			types[r.Type]++
		}
		if len(types) < 9 || wantMetrics.Evicted == 0 || wantMetrics.Windows < 30 {
			t.Fatalf("seed %d: findings %v, metrics %+v: the case does not exercise the rules", seed, types, wantMetrics)
		}
		slowSeen := false
		rng := rand.New(rand.NewPCG(seed, 7))
		cuts := []int{0, 1, len(chunks) / 2, len(chunks) - 1, len(chunks)}
		for range 20 {
			cuts = append(cuts, rng.IntN(len(chunks)+1))
		}
		for _, cut := range cuts {
			a, _ := New(o)
			for _, c := range chunks[:cut] {
				a.apply(c)
			}
			if slow := len(a.slowRule().srcs); slow > 0 {
				slowSeen = true
			}
			blob := snapshotOf(t, a)
			b, err := Restore(bytes.NewReader(blob), o)
			if err != nil {
				t.Fatalf("seed %d, cut %d: %v", seed, cut, err)
			}
			if again := snapshotOf(t, b); !bytes.Equal(again, blob) {
				t.Fatalf("seed %d, cut %d: the restored engine snapshots to other bytes (%d, was %d)", seed, cut, len(again), len(blob))
			}
			if got, want := resultsJSON(t, b.Peek()), resultsJSON(t, a.Peek()); got != want {
				t.Fatalf("seed %d, cut %d: the restored engine peeks other findings", seed, cut)
			}
			for _, c := range chunks[cut:] {
				b.apply(c)
			}
			b.Flush()
			if got := resultsJSON(t, b.Results()); got != want {
				t.Fatalf("seed %d, cut %d of %d: findings differ from an uninterrupted run:\n%s", seed, cut, len(chunks), firstDiff(got, want))
			}
			if got := b.Metrics(); got != wantMetrics {
				t.Fatalf("seed %d, cut %d: metrics %+v, want %+v", seed, cut, got, wantMetrics)
			}
		}
		if !slowSeen {
			t.Errorf("seed %d: no cut held slow-reject state", seed)
		}
	}
}

func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(i-300, 0)
	return "got:  …" + a[lo:min(i+200, len(a))] + "\nwant: …" + b[lo:min(i+200, len(b))]
}

// TestRestoreRefusesOtherOptions: a snapshot taken under other settings or
// lists is refused, so that its windows are never judged by other rules.
func TestRestoreRefusesOtherOptions(t *testing.T) {
	g, o := snapshotCase(t, 5000, 3)
	e, _ := New(o)
	for _, c := range chunksOf(t, e, g.text, 0) {
		e.apply(c)
	}
	blob := snapshotOf(t, e)
	other := o
	other.Settings.Portscan.MinPorts++
	fewer := o
	fewer.Threats = fewer.Threats[1:]
	for name, x := range map[string]Options{"settings": other, "threat list": fewer} {
		if _, err := Restore(bytes.NewReader(blob), x); !errors.Is(err, ErrSnapshotOptions) {
			t.Errorf("%s changed: err = %v, want ErrSnapshotOptions", name, err)
		}
	}
	bad := bytes.Clone(blob)
	bad[8] = snapshotVersion + 1
	reseal(bad)
	if _, err := Restore(bytes.NewReader(bad), o); !errors.Is(err, ErrSnapshotVersion) {
		t.Errorf("other version: err = %v, want ErrSnapshotVersion", err)
	}
}

// reseal recomputes a blob's checksum after a test changed it.
func reseal(blob []byte) {
	n := len(blob) - snapshotTrailer
	binary.LittleEndian.PutUint32(blob[n:], crc32.Checksum(blob[:n], crcTable))
}

// TestRestoreCorrupt: every truncation and many single-byte changes of a
// real snapshot give an error, never a panic, with or without a valid
// checksum (the decoder's own checks then stop it).
func TestRestoreCorrupt(t *testing.T) {
	g, o := snapshotCase(t, 3000, 4)
	e, _ := New(o)
	for _, c := range chunksOf(t, e, g.text, 0) {
		e.apply(c)
	}
	blob := snapshotOf(t, e)
	if _, err := Restore(bytes.NewReader(blob), o); err != nil {
		t.Fatal(err)
	}
	step := max(len(blob)/2000, 1)
	for n := 0; n < len(blob); n += step {
		if _, err := Restore(bytes.NewReader(blob[:n]), o); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(blob))
		}
		cut := bytes.Clone(blob[:n+snapshotTrailer])
		if n >= 41 {
			reseal(cut)
			if _, err := Restore(bytes.NewReader(cut), o); err == nil {
				t.Fatalf("truncated to %d of %d bytes, checksum fixed: no error", n, len(blob))
			}
		}
	}
	rng := rand.New(rand.NewPCG(4, 4))
	for range 3000 {
		bad := bytes.Clone(blob)
		bad[rng.IntN(len(bad))] ^= byte(1 + rng.IntN(255))
		if _, err := Restore(bytes.NewReader(bad), o); err == nil {
			t.Fatal("a changed byte went unnoticed")
		}
		reseal(bad)
		if e, err := Restore(bytes.NewReader(bad), o); err == nil {
			// A change the format cannot see (a count, a time): the engine
			// must still run.
			e.Peek()
			e.Flush()
			e.Results()
		}
	}
}

// FuzzRestore: whatever the bytes after a valid header, Restore returns an
// engine or an error, and a restored engine can be fed, peeked, flushed.
func FuzzRestore(f *testing.F) {
	g, o := snapshotCase(f, 2000, 5)
	e, _ := New(o)
	chunks := chunksOf(f, e, g.text, 16<<10)
	f.Add(snapshotOf(f, e)[len(snapshotMagic)+1+32:])
	for i, c := range chunks {
		e.apply(c)
		if i%4 == 0 {
			f.Add(snapshotOf(f, e)[len(snapshotMagic)+1+32:])
		}
	}
	tail := chunks[len(chunks)-1]
	f.Fuzz(func(t *testing.T, body []byte) {
		fp := fingerprint(o)
		blob := append(append(append(snapshotMagic[:len(snapshotMagic):len(snapshotMagic)], snapshotVersion), fp[:]...), body...)
		blob = append(blob, 0, 0, 0, 0)
		reseal(blob)
		for _, b := range [][]byte{body, blob} {
			e, err := Restore(bytes.NewReader(b), o)
			if err != nil {
				continue
			}
			e.apply(tail)
			e.Peek()
			e.Flush()
			e.Results()
			var buf bytes.Buffer
			if err := e.Snapshot(&buf); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// BenchmarkSnapshot measures a snapshot of an internet-wide scan's open
// window (the daemon's worst case: every source tracked) at 100,000 and a
// million sources: the time to write and to restore it, and its size raw
// and compressed with zstd as the store keeps it.
func BenchmarkSnapshot(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("sources=%d", n), func(b *testing.B) {
			set := DefaultSettings()
			set.MaxTrackedSources = 2 * n
			o := Options{Settings: set, Home: vpc}
			e, _ := New(o)
			for _, c := range internetScan(n) {
				e.apply(c)
			}
			raw := snapshotOf(b, e)
			b.Run("write", func(b *testing.B) {
				for range b.N {
					raw = snapshotOf(b, e)
				}
				b.ReportMetric(float64(len(raw)), "bytes")
				b.ReportMetric(float64(len(raw))/float64(n), "bytes/source")
			})
			b.Run("zstd", func(b *testing.B) {
				enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
				var z []byte
				for range b.N {
					z = enc.EncodeAll(raw, z[:0])
				}
				b.ReportMetric(float64(len(z)), "bytes")
				b.ReportMetric(float64(len(z))/float64(n), "bytes/source")
			})
			b.Run("restore", func(b *testing.B) {
				for range b.N {
					if _, err := Restore(bytes.NewReader(raw), o); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
