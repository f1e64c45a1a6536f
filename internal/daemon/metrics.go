package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flowguard/flowguard/internal/awsmetrics"
)

// Metrics are the daemon's Prometheus metrics (docs/daemon.md lists them).
type Metrics struct {
	Registry *prometheus.Registry

	Records       *prometheus.CounterVec
	BytesRead     *prometheus.CounterVec
	ParseErrors   *prometheus.CounterVec
	SourceLag     *prometheus.GaugeVec
	Findings      *prometheus.CounterVec
	Notifications *prometheus.CounterVec
	AWSAPIErrors  *prometheus.CounterVec // awsmetrics.Errors, fed by every AWS client
	Latency       prometheus.Histogram
	Commits       prometheus.Counter
	// SnapshotBytes and SnapshotSeconds describe the engine snapshots
	// (snapshot.go): the last one's size before compression, and the time
	// each took to write.
	SnapshotBytes   prometheus.Gauge
	SnapshotSeconds prometheus.Histogram
	SignInsEvicted  prometheus.Counter // CloudTrail sign-ins forgotten (cloudtrail.max_tracked_sign_ins)
}

// NewMetrics registers the metrics on a new registry, with the Go and
// process collectors.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowguard_records_total",
			Help: "Records decoded from each source."}, []string{"source"}),
		BytesRead: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowguard_bytes_read_total",
			Help: "Bytes read from each source."}, []string{"source"}),
		ParseErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowguard_parse_errors_total",
			Help: "Malformed lines or records skipped, by source."}, []string{"source"}),
		SourceLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "flowguard_source_lag_seconds",
			Help: "How long the last data processed from each source waited between its arrival and its processing."}, []string{"source"}),
		Findings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowguard_findings_total",
			Help: "Findings raised, by type."}, []string{"type"}),
		Notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowguard_notifications_total",
			Help: "Notifications, by notifier and result (delivered; queued for a later try; failed and dropped)."}, []string{"notifier", "result"}),
		AWSAPIErrors: awsmetrics.Errors,
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "flowguard_detection_latency_seconds",
			Help:    "From a record's arrival at a source to the finding or alarm decision it caused being stored.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}),
		Commits: prometheus.NewCounter(prometheus.CounterOpts{Name: "flowguard_commits_total",
			Help: "Store transactions that saved findings, alarm states and source positions together."}),
		SnapshotBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "flowguard_snapshot_bytes",
			Help: "Size of the last engine snapshot, before compression."}),
		SnapshotSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "flowguard_snapshot_seconds",
			Help:    "Time to write each engine snapshot (the processor waits meanwhile).",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5}}),
		SignInsEvicted: prometheus.NewCounter(prometheus.CounterOpts{Name: "flowguard_cloudtrail_sign_ins_evicted_total",
			Help: "Console sign-ins the CloudTrail brute-force rules forgot to stay within cloudtrail.max_tracked_sign_ins."}),
	}
	r.MustRegister(m.Records, m.BytesRead, m.ParseErrors, m.SourceLag, m.Findings, m.Notifications,
		m.AWSAPIErrors, m.Latency, m.Commits, m.SnapshotBytes, m.SnapshotSeconds, m.SignInsEvicted,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
