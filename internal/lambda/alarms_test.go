package lambda

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/respond"
	"github.com/flowguard/flowguard/internal/store"
)

// recorder is a response pipeline that keeps what it is handed.
type recorder struct {
	mu     sync.Mutex
	alarms []alarm.StateChange
}

func (r *recorder) Start(context.Context) (respond.Report, error) { return respond.Report{}, nil }

func (r *recorder) Handle(_ context.Context, evs []respond.Event) (respond.Report, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range evs {
		if ev.Alarm != nil {
			r.alarms = append(r.alarms, *ev.Alarm)
		}
	}
	return respond.Report{}, nil
}

// transitions are state changes as "alarm FROM->TO at HH:MM", in order,
// each once (the pipeline's notification log makes a change handed twice
// one message).
func transitions(cs []alarm.StateChange) []string {
	var out []string
	for _, c := range cs {
		s := fmt.Sprintf("%s %s->%s at %s", c.Alarm, c.From, c.To, c.Time.UTC().Format("15:04"))
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// TestAlarmsAcrossInvocations: the alarm counts rejected SSH connections
// a minute; the minute that crosses the threshold comes half in one
// invocation's records, half in another's, the two running at once in two
// handlers (two cold processes), and a third invocation's later record
// moves event time past the allowed lateness. The state changes, made
// across the three, are those one process (alarm.Clock over the same
// records) makes, each once, and handed to the response pipeline; the
// alarm states in the store are the final ones.
func TestAlarmsAcrossInvocations(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "fg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg, err := config.Load("testdata/alarm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	// The alarm's minute, 10:02, is half in a, half in b; c's record moves
	// event time on.
	var parts []string
	for _, f := range []string{"alarm-a.log", "alarm-b.log", "alarm-c.log"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, string(b))
	}
	// One process: the same records, in the same order, through the clock
	// serve and alarms run use.
	eng, err := alarm.NewEngine(cfg.Alarms)
	if err != nil {
		t.Fatal(err)
	}
	one := &alarm.Clock{Engine: eng, Lateness: 2 * time.Minute}
	var want []alarm.StateChange
	for _, p := range parts {
		for _, l := range strings.Split(strings.TrimSpace(p), "\n") {
			f := strings.Fields(l)
			var start int64
			fmt.Sscan(f[10], &start)
			want = append(want, one.Observe(time.Unix(start, 0).UTC(), []byte(l))...)
		}
	}
	if !slices.Contains(transitions(want), "ssh-reject-spike OK->ALARM at 10:03") {
		t.Fatalf("the test's records do not make the alarm fire in one process: %v", transitions(want))
	}

	rec := &recorder{}
	handler := func() *Handler { // a cold start: nothing but the store is shared
		return &Handler{Store: st, Config: cfg, Window: 10 * time.Minute, Respond: rec}
	}
	kinesis := func(seq string, data string) map[string]any {
		return map[string]any{"Records": []any{map[string]any{"eventSource": "aws:kinesis", "kinesis": map[string]any{
			"data": base64.StdEncoding.EncodeToString([]byte(data)), "sequenceNumber": seq,
			"approximateArrivalTimestamp": float64(base.Add(5 * time.Minute).Unix())}}}}
	}
	var wg sync.WaitGroup
	for i, p := range parts[:2] {
		wg.Go(func() {
			out := invoke(t, handler(), kinesis(fmt.Sprint(i+1), p)).(BatchResponse)
			if len(out.BatchItemFailures) != 0 {
				t.Errorf("invocation %d failed: %+v", i+1, out)
			}
		})
	}
	wg.Wait()
	invoke(t, handler(), kinesis("3", parts[2]))

	t.Logf("one process: %v", transitions(want))
	if got, w := transitions(rec.alarms), transitions(want); !slices.Equal(got, w) {
		t.Fatalf("alarm state changes handed to the pipeline:\n  %v\none process:\n  %v", got, w)
	}
	as, err := st.LoadAlarmStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := want[len(want)-1]
	if a := as["ssh-reject-spike"]; a.State != last.To || !a.Since.Equal(last.Time) {
		t.Fatalf("stored alarm state %+v, want %s since %s", a, last.To, last.Time)
	}
	clk, err := st.LoadAlarmClock(ctx)
	if err != nil || len(clk.Pending) != 0 {
		t.Fatalf("the clock keeps state changes the pipeline took: %+v %v", clk.Pending, err)
	}
	// The same records again (a retried invocation) change nothing.
	before := len(rec.alarms)
	invoke(t, handler(), kinesis("3", parts[2]))
	if len(rec.alarms) != before {
		t.Fatalf("a retried invocation handed %d more state changes", len(rec.alarms)-before)
	}
}

// failing is a response pipeline that is down.
type failing struct{ recorder }

func (f *failing) Handle(context.Context, []respond.Event) (respond.Report, error) {
	return respond.Report{}, errors.New("the pipeline is down")
}

// TestAlarmChangesSurviveAFailedPipeline: an invocation whose pipeline
// fails after the alarm fired leaves the state changes in the alarm
// clock; the next invocation (a new process) hands them on, once.
func TestAlarmChangesSurviveAFailedPipeline(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "fg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg, err := config.Load("testdata/alarm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var all string
	for _, f := range []string{"alarm-a.log", "alarm-b.log", "alarm-c.log"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		all += string(b)
	}
	ev := func(seq string) map[string]any {
		return map[string]any{"Records": []any{map[string]any{"eventSource": "aws:kinesis", "kinesis": map[string]any{
			"data": base64.StdEncoding.EncodeToString([]byte(all)), "sequenceNumber": seq, "approximateArrivalTimestamp": 1795342000.0}}}}
	}
	down := &failing{}
	sum := invoke(t, &Handler{Store: st, Config: cfg, Window: 10 * time.Minute, Respond: down}, ev("1")).(BatchResponse)
	if len(sum.BatchItemFailures) != 0 {
		t.Fatalf("the invocation failed: %+v", sum)
	}
	clk, err := st.LoadAlarmClock(ctx)
	if err != nil || len(clk.Pending) == 0 {
		t.Fatalf("after a failed pipeline the clock keeps no state change: %+v %v", clk, err)
	}
	up := &recorder{}
	invoke(t, &Handler{Store: st, Config: cfg, Window: 10 * time.Minute, Respond: up}, ev("1"))
	if got := transitions(up.alarms); !slices.Contains(got, "ssh-reject-spike OK->ALARM at 10:03") || len(got) != len(clk.Pending) {
		t.Fatalf("the next invocation handed %v, want the %d changes the first left", got, len(clk.Pending))
	}
	if clk, _ := st.LoadAlarmClock(ctx); len(clk.Pending) != 0 {
		t.Fatalf("handed state changes stay in the clock: %+v", clk.Pending)
	}
}

// BenchmarkInvocation measures an invocation on a Kinesis batch of 8,000
// flow log records (SQLite store), without and with the alarms: section:
// the difference is the alarms' cost (reading the windows again, the
// metric filters, the clock).
func BenchmarkInvocation(b *testing.B) {
	lines := attackLines(b)
	for _, bc := range []struct{ name, config string }{{"NoAlarms", ""}, {"Alarms", "testdata/alarm.yaml"}} {
		b.Run(bc.name, func(b *testing.B) {
			st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "fg.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			cfg := config.DefaultConfig()
			if bc.config != "" {
				c, err := config.Load(bc.config)
				if err != nil {
					b.Fatal(err)
				}
				cfg = *c
			}
			h := &Handler{Store: st, Config: &cfg, Window: 24 * time.Hour}
			ev, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{"eventSource": "aws:kinesis", "kinesis": map[string]any{
				"data": base64.StdEncoding.EncodeToString(lines), "sequenceNumber": "1", "approximateArrivalTimestamp": 1.7e9}}}})
			b.SetBytes(int64(len(lines)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := h.Invoke(context.Background(), ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
