package daemon

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/flowguard/flowguard/internal/synth"
)

const benchConfig = `detectors:
  allowed_lateness: 2m
alarms:
  metric_filters:
    - name: rejects
      pattern: '[version, account, eni, source, destination, srcport, destport, protocol, packets, bytes, windowstart, windowend, action="REJECT", flowlogstatus]'
      metric_name: RejectedConnections
      namespace: FlowGuard
      value: "1"
      default_value: 0
  alarms:
    - name: reject-spike
      namespace: FlowGuard
      metric_name: RejectedConnections
      statistic: Sum
      period: 60
      evaluation_periods: 1
      threshold: 300
      comparison_operator: GreaterThanOrEqualToThreshold
sources:
  - name: local
    type: files
    paths: [%s]
    poll_interval: 20ms
`

// quantile estimates a quantile of a histogram from its buckets (the
// upper bound of the bucket it falls in).
func quantile(h *dto.Histogram, q float64) float64 {
	want := q * float64(h.GetSampleCount())
	for _, b := range h.GetBucket() {
		if float64(b.GetCumulativeCount()) >= want {
			return b.GetUpperBound()
		}
	}
	return -1
}

// BenchmarkDaemonIngest runs the daemon in-process on a file that grows
// as fast as it can be written, with detection and an alarm on, and
// reports the sustained ingest rate (from the first byte written to the
// last position committed).
func BenchmarkDaemonIngest(b *testing.B) { benchIngest(b, 0) }

// BenchmarkDaemonLatency100k appends 100,000 records a second (a tenth
// every 100ms) and reports the p99 detection latency from the histogram.
func BenchmarkDaemonLatency100k(b *testing.B) { benchIngest(b, 100000) }

func benchIngest(b *testing.B, perSecond int) {
	records := 400000
	if s := os.Getenv("FLOWGUARD_BENCH_RECORDS"); s != "" {
		records, _ = strconv.Atoi(s)
	}
	var data bytes.Buffer
	if err := synth.New(synth.Config{Records: records, Seed: 1, AccountID: "123456789012", Region: "us-east-1"}).WriteText(&data, false); err != nil {
		b.Fatal(err)
	}
	all := data.Bytes()
	// Pieces of whole lines: 1 MiB, or a tenth of a second's records.
	var pieces [][]byte
	step := 1 << 20
	if perSecond > 0 {
		step = len(all) / records * perSecond / 10
	}
	for off := 0; off < len(all); {
		end := min(off+step, len(all))
		if i := bytes.LastIndexByte(all[off:end], '\n'); i >= 0 && end < len(all) {
			end = off + i + 1
		}
		pieces = append(pieces, all[off:end])
		off = end
	}
	b.SetBytes(int64(len(all)))
	b.ReportAllocs()
	var rate, p99 float64
	for b.Loop() {
		dir := b.TempDir()
		logs := filepath.Join(dir, "logs")
		os.MkdirAll(logs, 0o755)
		cfg := filepath.Join(dir, "flowguard.yaml")
		os.WriteFile(cfg, fmt.Appendf(nil, benchConfig, logs), 0o644)
		ctx, cancel := context.WithCancel(context.Background())
		d, err := New(ctx, Options{ConfigPath: cfg, DBPath: filepath.Join(dir, "f.db")})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		start := time.Now()
		f, _ := os.Create(filepath.Join(logs, "flows.log"))
		for i, p := range pieces {
			f.Write(p)
			if perSecond > 0 {
				time.Sleep(time.Until(start.Add(time.Duration(i+1) * 100 * time.Millisecond)))
			}
		}
		f.Close()
		want := strconv.Itoa(len(all))
		for {
			ps, _ := d.Store().LoadPositions(ctx, "local")
			if len(ps) == 1 && ps[0].Token == want {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		elapsed := time.Since(start)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		var m dto.Metric
		d.Metrics.Latency.Write(&m)
		d.Close()
		rate = float64(records) / elapsed.Seconds()
		p99 = quantile(m.GetHistogram(), 0.99)
	}
	b.ReportMetric(rate, "records/s")
	b.ReportMetric(p99, "p99-latency-s")
}

// BenchmarkDaemonMemoryHour feeds an hour of generated traffic (event
// time; FLOWGUARD_BENCH_RECORDS records, default 2,000,000) in pieces and
// samples the heap in use after each: it reports the peak, and the peak of
// the last quarter of the hour over the peak of the first (1 is flat).
// The generated data the benchmark holds is not counted.
func BenchmarkDaemonMemoryHour(b *testing.B) {
	records := 2000000
	if s := os.Getenv("FLOWGUARD_BENCH_RECORDS"); s != "" {
		records, _ = strconv.Atoi(s)
	}
	var data bytes.Buffer
	if err := synth.New(synth.Config{Records: records, Seed: 2, Duration: time.Hour, AccountID: "123456789012", Region: "us-east-1"}).WriteText(&data, false); err != nil {
		b.Fatal(err)
	}
	all := data.Bytes()
	var peak, firstQ, lastQ uint64
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base) // the generated data, held by the benchmark
	for b.Loop() {
		dir := b.TempDir()
		logs := filepath.Join(dir, "logs")
		os.MkdirAll(logs, 0o755)
		cfg := filepath.Join(dir, "flowguard.yaml")
		os.WriteFile(cfg, fmt.Appendf(nil, benchConfig, logs), 0o644)
		ctx, cancel := context.WithCancel(context.Background())
		d, err := New(ctx, Options{ConfigPath: cfg, DBPath: filepath.Join(dir, "f.db")})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		f, _ := os.Create(filepath.Join(logs, "flows.log"))
		const pieces = 40
		off := 0
		for i := 1; i <= pieces; i++ {
			end := len(all) * i / pieces
			if j := bytes.LastIndexByte(all[off:end], '\n'); j >= 0 && i < pieces {
				end = off + j + 1
			}
			f.Write(all[off:end])
			off = end
			want := strconv.Itoa(off)
			for {
				ps, _ := d.Store().LoadPositions(ctx, "local")
				if len(ps) == 1 && ps[0].Token == want {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			heap := ms.HeapInuse - min(ms.HeapInuse, base.HeapInuse)
			peak = max(peak, heap)
			if i <= pieces/4 {
				firstQ = max(firstQ, heap)
			}
			if i > pieces*3/4 {
				lastQ = max(lastQ, heap)
			}
		}
		f.Close()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		d.Close()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(lastQ)/float64(firstQ), "last/first-quarter")
}
