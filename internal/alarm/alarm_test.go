package alarm

import (
	"strings"
	"testing"
	"time"
)

// points turns the documentation's notation into datapoints: "0" is a
// non-breaching datapoint, "X" a breaching one and "-" a missing one, oldest
// first, separated by spaces.
func points(t *testing.T, s string) []Datapoint {
	t.Helper()
	var out []Datapoint
	for _, f := range strings.Fields(s) {
		switch f {
		case "0":
			out = append(out, Datapoint{Value: 0})
		case "X":
			out = append(out, Datapoint{Value: 1, Breaching: true})
		case "-":
			out = append(out, Datapoint{Missing: true})
		default:
			t.Fatalf("bad datapoint %q in %q", f, s)
		}
	}
	return out
}

// The tables of "Configuring how CloudWatch alarms treat missing data",
// section "How alarm state is evaluated when data is missing", of the Amazon
// CloudWatch User Guide
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-evaluating-missing-data),
// as of the last revision published in awsdocs/amazon-cloudwatch-user-guide
// (doc_source/AlarmThatSendsEmail.md, June 2023). The evaluation range is 5.
// "retain" stands for "Retain current state".
//
// The rows marked "earlier revision" come from the same page's earlier
// revision of the tables (rows that the current revision replaced with the
// "premature alarm state" rows); they are consistent with the current text.
func TestDecideDocumentedTables(t *testing.T) {
	tests := []struct {
		name         string
		m, n         int
		data         string
		fill         int // "# of data points that must be filled"
		missing      string
		ignore       string
		breaching    string
		notBreaching string
	}{
		// Table 1: Datapoints to Alarm = Evaluation Periods = 3.
		{"3of3 row1", 3, 3, "0 - X - X", 0, "OK", "OK", "OK", "OK"},
		{"3of3 row2", 3, 3, "0 - - - -", 2, "OK", "OK", "OK", "OK"},
		{"3of3 row3", 3, 3, "- - - - -", 3, "INSUFFICIENT_DATA", "retain", "ALARM", "OK"},
		{"3of3 row4", 3, 3, "0 X X - X", 0, "ALARM", "ALARM", "ALARM", "ALARM"},
		{"3of3 row5 premature", 3, 3, "- - X - -", 2, "ALARM", "retain", "ALARM", "OK"},
		// Table 2: 2 out of 3.
		{"2of3 row1", 2, 3, "0 - X - X", 0, "ALARM", "ALARM", "ALARM", "ALARM"},
		{"2of3 row2", 2, 3, "0 0 X 0 X", 0, "ALARM", "ALARM", "ALARM", "ALARM"},
		{"2of3 row3", 2, 3, "0 - X - -", 1, "OK", "OK", "ALARM", "OK"},
		{"2of3 row4", 2, 3, "- - - - 0", 2, "OK", "OK", "ALARM", "OK"},
		{"2of3 row5 premature", 2, 3, "- - - X -", 2, "ALARM", "retain", "ALARM", "OK"},
		// Earlier revision of the page.
		{"3of3 earlier: newest breaching only", 3, 3, "- - - - X", 2, "INSUFFICIENT_DATA", "retain", "ALARM", "OK"},
		{"3of3 earlier: oldest breaching only", 3, 3, "X - - - -", 2, "ALARM", "retain", "ALARM", "OK"},
		{"2of3 earlier: newest breaching only", 2, 3, "- - - - X", 2, "INSUFFICIENT_DATA", "retain", "ALARM", "OK"},
		// From the text of "Avoiding premature transitions to alarm state":
		// with Datapoints to Alarm 3, "- - - X -" does not go to ALARM.
		{"3of3 text: - - - X -", 3, 3, "- - - X -", 2, "INSUFFICIENT_DATA", "retain", "ALARM", "OK"},
	}
	for _, tt := range tests {
		pts := points(t, tt.data)
		for _, c := range []struct{ tmd, want string }{
			{MissingMissing, tt.missing},
			{MissingIgnore, tt.ignore},
			{MissingBreaching, tt.breaching},
			{MissingNotBreaching, tt.notBreaching},
		} {
			// Run from each starting state so that "retain" is tested as such.
			for _, cur := range []State{StateOK, StateAlarm, StateInsufficientData} {
				d := Decide(pts, tt.m, tt.n, c.tmd, cur)
				want := State(c.want)
				if c.want == "retain" {
					want = cur
					if !d.Retain {
						t.Errorf("%s [%s] %s from %s: Retain not set", tt.name, tt.data, c.tmd, cur)
					}
				}
				if d.State != want {
					t.Errorf("%s [%s] %s from %s: got %s, want %s", tt.name, tt.data, c.tmd, cur, d.State, want)
				}
				if (c.tmd == MissingBreaching || c.tmd == MissingNotBreaching) && d.Filled != tt.fill {
					t.Errorf("%s [%s] %s: filled %d, want %d", tt.name, tt.data, c.tmd, d.Filled, tt.fill)
				}
			}
		}
	}
}

// "Evaluating an alarm": the figure with threshold 3, Evaluation Periods =
// Datapoints to Alarm = 3: ALARM in periods 3 to 5, OK again at period 6, and
// a single breach in period 9 leaves the alarm OK.
func TestEvaluatorDocumentedFigure(t *testing.T) {
	store := NewStore()
	a := Alarm{Name: "fig", Namespace: "ns", MetricName: "m", Statistic: "Maximum", Period: 60,
		EvaluationPeriods: 3, Threshold: 3, ComparisonOperator: GreaterThanThreshold}
	e, err := NewEvaluator(a, store)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	// One datapoint a minute; above the threshold in minutes 1-3 and 7.
	values := []float64{4, 5, 4, 1, 2, 2, 5, 2, 2}
	key := SeriesKey{Namespace: "ns", MetricName: "m"}
	var got []string
	for i, v := range values {
		store.Put(key, "", t0.Add(time.Duration(i)*time.Minute+10*time.Second), v)
		now := t0.Add(time.Duration(i+1) * time.Minute)
		if sc, ok := e.Evaluate(now); ok {
			got = append(got, now.Format("15:04")+" "+string(sc.From)+"->"+string(sc.To))
		}
	}
	// Minute 1: one real datapoint, breaching, fewer than 3: missing data,
	// oldest breaching age 1 < 3 -> INSUFFICIENT_DATA (no change).
	// Minute 2: "- - - X X": all breaching, oldest age 2 < 3 -> no change.
	// Minute 3: X X X -> ALARM. Minute 4: X X 0 -> OK. Then OK stays: the
	// single breach at minute 7 is not enough.
	want := []string{"10:03 INSUFFICIENT_DATA->ALARM", "10:04 ALARM->OK"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("transitions\n got %v\nwant %v", got, want)
	}
}

func TestAlarmValidate(t *testing.T) {
	base := Alarm{Name: "a", Namespace: "ns", MetricName: "m", Statistic: "Sum", Period: 300,
		EvaluationPeriods: 1, Threshold: 1, ComparisonOperator: GreaterThanOrEqualToThreshold}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		mut  func(*Alarm)
		want string
	}{
		{func(a *Alarm) { a.Period = 90 }, "multiple of 60"},
		{func(a *Alarm) { a.Period = 10 }, "multiple of 60"},
		{func(a *Alarm) { a.ComparisonOperator = "GreaterThanUpperThreshold" }, "anomaly detection"},
		{func(a *Alarm) { a.ComparisonOperator = "Bigger" }, "unknown comparison"},
		{func(a *Alarm) { a.Statistic = "Median" }, "not one of"},
		{func(a *Alarm) { a.Statistic = ""; a.ExtendedStatistic = "tm99" }, "not supported"},
		{func(a *Alarm) { a.ExtendedStatistic = "p99" }, "not both"},
		{func(a *Alarm) { a.DatapointsToAlarm = 2 }, "between 1 and"},
		{func(a *Alarm) { a.EvaluationPeriods = 300 }, "one day"},
		{func(a *Alarm) { a.TreatMissingData = "zero" }, "treat_missing_data"},
	}
	for _, c := range cases {
		a := base
		c.mut(&a)
		err := a.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want error containing %q", err, c.want)
		}
	}
}

func TestStatistics(t *testing.T) {
	store := NewStore()
	store.KeepValues("ns", "m")
	key := SeriesKey{Namespace: "ns", MetricName: "m"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// 1..100 spread over two minutes.
	for i := 1; i <= 100; i++ {
		store.Put(key, "", t0.Add(time.Duration(i%2)*time.Minute), float64(i))
	}
	agg, ok := store.Aggregate(key, t0.Unix()/60, t0.Unix()/60+2)
	if !ok {
		t.Fatal("no data")
	}
	want := map[string]float64{"Sum": 5050, "Average": 50.5, "Minimum": 1, "Maximum": 100, "SampleCount": 100, "p50": 50, "p90": 90, "p99": 99, "p99.5": 100, "p100": 100}
	for stat, w := range want {
		got, ok := agg.Statistic(stat)
		if !ok || got != w {
			t.Errorf("%s = %v (%v), want %v", stat, got, ok, w)
		}
	}
	// One minute only: the odd numbers went to minute 1.
	agg, _ = store.Aggregate(key, t0.Unix()/60+1, t0.Unix()/60+2)
	if got, _ := agg.Statistic("SampleCount"); got != 50 {
		t.Errorf("minute 1 SampleCount = %v, want 50", got)
	}
	if got, _ := agg.Statistic("Minimum"); got != 1 {
		t.Errorf("minute 1 Minimum = %v, want 1", got)
	}
}

func TestLowSampleLimit(t *testing.T) {
	// "this setting would be used if there were fewer than 1000 samples for
	// an alarm on a p99 percentile"
	if got := lowSampleLimit(99); got < 999.99 || got > 1000.01 {
		t.Errorf("p99 limit %v, want 1000", got)
	}
	if got := lowSampleLimit(10); got != 100 {
		t.Errorf("p10 limit %v, want 100", got)
	}
}

func TestReasonText(t *testing.T) {
	store := NewStore()
	a := Alarm{Name: "r", Namespace: "ns", MetricName: "m", Statistic: "Sum", Period: 60,
		EvaluationPeriods: 3, DatapointsToAlarm: 2, Threshold: 2, ComparisonOperator: GreaterThanThreshold,
		AlarmActions: []string{"arn:aws:sns:us-east-1:111122223333:ops"}}
	e, err := NewEvaluator(a, store)
	if err != nil {
		t.Fatal(err)
	}
	key := SeriesKey{Namespace: "ns", MetricName: "m"}
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i, v := range []float64{5, 1, 3} {
		store.Put(key, "", t0.Add(time.Duration(i)*time.Minute), v)
	}
	sc, ok := e.Evaluate(t0.Add(3 * time.Minute))
	if !ok || sc.To != StateAlarm {
		t.Fatalf("got %+v, %v", sc, ok)
	}
	want := "Threshold Crossed: 2 out of the last 3 datapoints [3.0 (22/11/26 10:02:00), 5.0 (22/11/26 10:00:00)] were greater than the threshold (2.0) (minimum 2 datapoints for INSUFFICIENT_DATA -> ALARM transition)."
	if sc.Reason != want {
		t.Errorf("reason\n got %s\nwant %s", sc.Reason, want)
	}
	if len(sc.Actions) != 1 || sc.Actions[0] != a.AlarmActions[0] {
		t.Errorf("actions %v", sc.Actions)
	}
	if len(sc.Datapoints) != 5 {
		t.Errorf("%d datapoints, want the evaluation range of 5", len(sc.Datapoints))
	}
}
