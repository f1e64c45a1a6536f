package alarm

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// State is an alarm state.
type State string

// Alarm states, as CloudWatch names them.
const (
	StateOK               State = "OK"
	StateAlarm            State = "ALARM"
	StateInsufficientData State = "INSUFFICIENT_DATA"
)

// TreatMissingData values.
const (
	MissingMissing      = "missing"
	MissingIgnore       = "ignore"
	MissingBreaching    = "breaching"
	MissingNotBreaching = "notBreaching"
)

// Comparison operators supported by flowguard (CloudWatch's static-threshold
// operators). The anomaly-detection band operators
// (LessThanLowerOrGreaterThanUpperThreshold, LessThanLowerThreshold,
// GreaterThanUpperThreshold) are not supported.
const (
	GreaterThanOrEqualToThreshold = "GreaterThanOrEqualToThreshold"
	GreaterThanThreshold          = "GreaterThanThreshold"
	LessThanThreshold             = "LessThanThreshold"
	LessThanOrEqualToThreshold    = "LessThanOrEqualToThreshold"
)

// Alarm is a metric alarm as configured: the properties of
// AWS::CloudWatch::Alarm that apply to a single metric.
type Alarm struct {
	Name        string            `yaml:"name" json:"name"`
	Description string            `yaml:"description,omitempty" json:"description,omitempty"`
	Namespace   string            `yaml:"namespace" json:"namespace"`
	MetricName  string            `yaml:"metric_name" json:"metric_name"`
	Dimensions  map[string]string `yaml:"dimensions,omitempty" json:"dimensions,omitempty"`
	// Statistic is Sum, Average, Minimum, Maximum or SampleCount;
	// ExtendedStatistic is a percentile such as p99 or p99.9. Exactly one.
	Statistic         string `yaml:"statistic,omitempty" json:"statistic,omitempty"`
	ExtendedStatistic string `yaml:"extended_statistic,omitempty" json:"extended_statistic,omitempty"`
	// Period in seconds: a multiple of 60 (metric filters publish per minute).
	Period             int     `yaml:"period" json:"period"`
	EvaluationPeriods  int     `yaml:"evaluation_periods" json:"evaluation_periods"`
	DatapointsToAlarm  int     `yaml:"datapoints_to_alarm,omitempty" json:"datapoints_to_alarm,omitempty"`
	Threshold          float64 `yaml:"threshold" json:"threshold"`
	ComparisonOperator string  `yaml:"comparison_operator" json:"comparison_operator"`
	// TreatMissingData: missing (default), ignore, breaching, notBreaching.
	TreatMissingData string `yaml:"treat_missing_data,omitempty" json:"treat_missing_data,omitempty"`
	// EvaluateLowSampleCountPercentile: "evaluate" (default) or "ignore".
	EvaluateLowSampleCountPercentile string `yaml:"evaluate_low_sample_count_percentile,omitempty" json:"evaluate_low_sample_count_percentile,omitempty"`
	// EvaluationRange is how many of the most recent periods are retrieved to
	// stand in for missing ones. CloudWatch does not publish its rule ("depends
	// on the length of the alarm period"); its examples use 5 for 3 evaluation
	// periods, and flowguard's default is EvaluationPeriods+2.
	EvaluationRange         int      `yaml:"evaluation_range,omitempty" json:"evaluation_range,omitempty"`
	ActionsEnabled          *bool    `yaml:"actions_enabled,omitempty" json:"actions_enabled,omitempty"`
	AlarmActions            []string `yaml:"alarm_actions,omitempty" json:"alarm_actions,omitempty"`
	OKActions               []string `yaml:"ok_actions,omitempty" json:"ok_actions,omitempty"`
	InsufficientDataActions []string `yaml:"insufficient_data_actions,omitempty" json:"insufficient_data_actions,omitempty"`
}

// Validate checks the alarm's configuration.
func (a *Alarm) Validate() error {
	wrap := func(format string, args ...any) error {
		return fmt.Errorf("alarm %q: %s", a.Name, fmt.Sprintf(format, args...))
	}
	if a.Name == "" {
		return fmt.Errorf("alarm without a name")
	}
	if a.Namespace == "" || a.MetricName == "" {
		return wrap("namespace and metric_name are required")
	}
	switch {
	case a.Statistic != "" && a.ExtendedStatistic != "":
		return wrap("give statistic or extended_statistic, not both")
	case a.ExtendedStatistic != "":
		if _, ok := parsePercentile(a.ExtendedStatistic); !ok {
			return wrap("extended statistic %q is not supported (percentiles pNN or pNN.N only)", a.ExtendedStatistic)
		}
	default:
		switch a.Statistic {
		case "Sum", "Average", "Minimum", "Maximum", "SampleCount":
		case "":
			return wrap("statistic is required (Sum, Average, Minimum, Maximum, SampleCount) or an extended_statistic such as p99")
		default:
			return wrap("statistic %q is not one of Sum, Average, Minimum, Maximum, SampleCount", a.Statistic)
		}
	}
	if a.Period < 60 || a.Period%60 != 0 {
		return wrap("period %d s: must be a multiple of 60 seconds (metric filters publish one datapoint a minute)", a.Period)
	}
	if a.EvaluationPeriods < 1 {
		return wrap("evaluation_periods must be at least 1")
	}
	if a.Period*a.EvaluationPeriods > 86400 {
		return wrap("period × evaluation_periods = %d s; CloudWatch allows at most one day", a.Period*a.EvaluationPeriods)
	}
	if a.DatapointsToAlarm < 0 || a.DatapointsToAlarm > a.EvaluationPeriods {
		return wrap("datapoints_to_alarm %d must be between 1 and evaluation_periods (%d)", a.DatapointsToAlarm, a.EvaluationPeriods)
	}
	if a.EvaluationRange != 0 && a.EvaluationRange < a.EvaluationPeriods {
		return wrap("evaluation_range %d is smaller than evaluation_periods %d", a.EvaluationRange, a.EvaluationPeriods)
	}
	switch a.ComparisonOperator {
	case GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold:
	case "LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold", "GreaterThanUpperThreshold":
		return wrap("comparison operator %s needs an anomaly detection band, which flowguard does not support", a.ComparisonOperator)
	default:
		return wrap("unknown comparison operator %q", a.ComparisonOperator)
	}
	switch a.TreatMissingData {
	case "", MissingMissing, MissingIgnore, MissingBreaching, MissingNotBreaching:
	default:
		return wrap("treat_missing_data %q is not one of missing, ignore, breaching, notBreaching", a.TreatMissingData)
	}
	switch a.EvaluateLowSampleCountPercentile {
	case "", "evaluate", "ignore":
	default:
		return wrap("evaluate_low_sample_count_percentile %q is not evaluate or ignore", a.EvaluateLowSampleCountPercentile)
	}
	if math.IsNaN(a.Threshold) || math.IsInf(a.Threshold, 0) {
		return wrap("threshold must be a finite number")
	}
	return nil
}

func (a *Alarm) m() int {
	if a.DatapointsToAlarm > 0 {
		return a.DatapointsToAlarm
	}
	return a.EvaluationPeriods
}

func (a *Alarm) rangeLen() int {
	if a.EvaluationRange > 0 {
		return a.EvaluationRange
	}
	return a.EvaluationPeriods + 2
}

func (a *Alarm) tmd() string {
	if a.TreatMissingData == "" {
		return MissingMissing
	}
	return a.TreatMissingData
}

func (a *Alarm) stat() string {
	if a.ExtendedStatistic != "" {
		return a.ExtendedStatistic
	}
	return a.Statistic
}

// Breaches reports whether a value breaches the alarm's threshold.
func (a *Alarm) Breaches(v float64) bool {
	switch a.ComparisonOperator {
	case GreaterThanOrEqualToThreshold:
		return v >= a.Threshold
	case GreaterThanThreshold:
		return v > a.Threshold
	case LessThanThreshold:
		return v < a.Threshold
	case LessThanOrEqualToThreshold:
		return v <= a.Threshold
	}
	return false
}

// Actions returns the actions configured for entering state s (none when
// actions are disabled).
func (a *Alarm) Actions(s State) []string {
	if a.ActionsEnabled != nil && !*a.ActionsEnabled {
		return nil
	}
	switch s {
	case StateAlarm:
		return a.AlarmActions
	case StateOK:
		return a.OKActions
	case StateInsufficientData:
		return a.InsufficientDataActions
	}
	return nil
}

// Datapoint is one period's value as an alarm evaluation saw it.
type Datapoint struct {
	// Time is the start of the period.
	Time        time.Time `json:"time"`
	Value       float64   `json:"value"`
	SampleCount float64   `json:"sample_count"`
	Missing     bool      `json:"missing,omitempty"`
	Breaching   bool      `json:"breaching,omitempty"`
	// LowSample is set for percentile datapoints with too few samples.
	LowSample bool `json:"low_sample,omitempty"`
}

// StateChange is an alarm state transition: the event that responders act
// on. Actions fire on transitions only.
type StateChange struct {
	Alarm  string    `json:"alarm"`
	From   State     `json:"from"`
	To     State     `json:"to"`
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
	// Datapoints are the evaluation range, oldest first.
	Datapoints []Datapoint `json:"datapoints"`
	// Actions are the alarm's actions for the new state.
	Actions []string `json:"actions,omitempty"`
	// Dimensions of the evaluated series.
	Dimensions map[string]string `json:"dimensions,omitempty"`
}

// Decision is the outcome of evaluating an alarm once.
type Decision struct {
	State State
	// Retain is set when the alarm keeps its current state because data is
	// missing and TreatMissingData is ignore (or percentiles have too few
	// samples and EvaluateLowSampleCountPercentile is ignore).
	Retain bool
	// Evaluated lists the indexes (into the datapoints) that decided, oldest
	// first; filled missing datapoints are not listed.
	Evaluated []int
	Breaching int // breaching datapoints among the N evaluated, fills included
	Filled    int // missing datapoints filled in per TreatMissingData
}

// Decide applies CloudWatch's alarm evaluation to the datapoints of the
// evaluation range (oldest first, most recent last). It is pure: it needs
// only the alarm's M, N and TreatMissingData and the current state.
//
// The rules, from "Configuring how CloudWatch alarms treat missing data"
// (CloudWatch User Guide, AlarmThatSendsEmail.html#alarms-and-missing-data):
//   - If at least N (EvaluationPeriods) datapoints in the range are real, the
//     N most recent real ones are evaluated and TreatMissingData is not used.
//   - Otherwise every real datapoint is evaluated and the missing ones are
//     filled in per TreatMissingData, as few times as possible.
//   - ALARM when at least M (DatapointsToAlarm) evaluated datapoints breach,
//     else OK.
//   - missing / ignore: with no real datapoint, INSUFFICIENT_DATA / the
//     current state. With some, ALARM if M of them breach, OK if any of them
//     does not breach; when all of them breach but fewer than M, the alarm
//     goes to ALARM if the oldest breaching datapoint is at least M periods
//     old (missing only: "avoiding premature transitions to alarm state"),
//     else INSUFFICIENT_DATA (missing) or keeps its state (ignore).
func Decide(points []Datapoint, m, n int, treatMissing string, current State) Decision {
	var real []int
	for i := range points {
		if !points[i].Missing {
			real = append(real, i)
		}
	}
	var d Decision
	if len(real) >= n {
		d.Evaluated = real[len(real)-n:]
		for _, i := range d.Evaluated {
			if points[i].Breaching {
				d.Breaching++
			}
		}
		d.State = verdict(d.Breaching, m)
		return d
	}
	d.Evaluated = real
	realBreaching := 0
	for _, i := range real {
		if points[i].Breaching {
			realBreaching++
		}
	}
	d.Filled = n - len(real)
	switch treatMissing {
	case MissingBreaching:
		d.Breaching = realBreaching + d.Filled
		d.State = verdict(d.Breaching, m)
		return d
	case MissingNotBreaching:
		d.Breaching = realBreaching
		d.State = verdict(d.Breaching, m)
		return d
	}
	// missing or ignore
	d.Breaching = realBreaching
	d.Filled = 0
	switch {
	case len(real) == 0:
	case realBreaching >= m:
		d.State = StateAlarm
		return d
	case realBreaching < len(real):
		d.State = StateOK
		return d
	case treatMissing != MissingIgnore && len(points)-real[0] >= m:
		// All real datapoints breach and the oldest is at least M old.
		d.State = StateAlarm
		return d
	}
	if treatMissing == MissingIgnore {
		d.State, d.Retain = current, true
		return d
	}
	d.State = StateInsufficientData
	return d
}

func verdict(breaching, m int) State {
	if breaching >= m {
		return StateAlarm
	}
	return StateOK
}

// lowSampleLimit is the sample count under which a percentile is "low
// sample": 10/(1-p) for p in [0.5, 1), 10/p for p in (0, 0.5).
func lowSampleLimit(pct float64) float64 {
	p := pct / 100
	switch {
	case p >= 1:
		return 0
	case p >= 0.5:
		return 10 / (1 - p)
	default:
		return 10 / p
	}
}

// Evaluator runs one alarm over a Store: a state machine driven by the
// caller's clock. It is not safe for concurrent use.
type Evaluator struct {
	alarm Alarm
	store *Store
	key   SeriesKey
	state State
	since time.Time
}

// NewEvaluator validates the alarm and binds it to a store. The alarm starts
// in INSUFFICIENT_DATA, as a new CloudWatch alarm does.
func NewEvaluator(a Alarm, store *Store) (*Evaluator, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, fmt.Errorf("alarm %q: no metric store", a.Name)
	}
	if a.ExtendedStatistic != "" {
		store.KeepValues(a.Namespace, a.MetricName)
	}
	return &Evaluator{
		alarm: a,
		store: store,
		key:   SeriesKey{Namespace: a.Namespace, MetricName: a.MetricName, Dimensions: DimensionsKey(a.Dimensions)},
		state: StateInsufficientData,
	}, nil
}

// Alarm returns the alarm's configuration.
func (e *Evaluator) Alarm() Alarm { return e.alarm }

// State returns the current state and when it was entered.
func (e *Evaluator) State() (State, time.Time) { return e.state, e.since }

// Restore sets the state (for example from a persisted store) without
// producing a state change.
func (e *Evaluator) Restore(s State, since time.Time) {
	e.state, e.since = s, since
}

// Datapoints returns the evaluation range at time now, oldest first. The
// alarm evaluates every minute over periods ending at the start of the
// current minute: at 10:05:30 a 5-minute period covers 10:00–10:05.
func (e *Evaluator) Datapoints(now time.Time) []Datapoint {
	a := &e.alarm
	pm := int64(a.Period / 60)
	end := floorMinute(now.Unix())
	r := a.rangeLen()
	pct, isPct := parsePercentile(a.ExtendedStatistic)
	out := make([]Datapoint, r)
	for k := 0; k < r; k++ {
		to := end - int64(r-1-k)*pm
		from := to - pm
		dp := Datapoint{Time: time.Unix(from*60, 0).UTC()}
		agg, ok := e.store.Aggregate(e.key, from, to)
		v, okStat := agg.Statistic(a.stat())
		if !ok || !okStat {
			dp.Missing = true
		} else {
			dp.Value, dp.SampleCount = v, agg.Count
			dp.Breaching = a.Breaches(v)
			if isPct && agg.Count < lowSampleLimit(pct) {
				dp.LowSample = true
			}
		}
		out[k] = dp
	}
	return out
}

// Evaluate evaluates the alarm at time now and returns the state change, if
// the state changed. Call it once a minute (or at any times: each call is one
// CloudWatch evaluation).
func (e *Evaluator) Evaluate(now time.Time) (StateChange, bool) {
	a := &e.alarm
	points := e.Datapoints(now)
	d := Decide(points, a.m(), a.EvaluationPeriods, a.tmd(), e.state)
	if a.EvaluateLowSampleCountPercentile == "ignore" {
		for _, i := range d.Evaluated {
			if points[i].LowSample {
				d.State, d.Retain = e.state, true
				break
			}
		}
	}
	if d.State == e.state {
		return StateChange{}, false
	}
	sc := StateChange{
		Alarm:      a.Name,
		From:       e.state,
		To:         d.State,
		Reason:     e.reason(points, d),
		Time:       now,
		Datapoints: points,
		Actions:    a.Actions(d.State),
		Dimensions: a.Dimensions,
	}
	e.state, e.since = d.State, now
	return sc, true
}

var opWords = map[string]string{
	GreaterThanOrEqualToThreshold: "greater than or equal to",
	GreaterThanThreshold:          "greater than",
	LessThanThreshold:             "less than",
	LessThanOrEqualToThreshold:    "less than or equal to",
}

// reason writes a state reason in CloudWatch's style, for example
// "Threshold Crossed: 2 out of the last 3 datapoints [5.0 (22/11/26 10:02:00),
// 3.0 (22/11/26 10:01:00)] were greater than the threshold (2.0) (minimum 2
// datapoints for OK -> ALARM transition)."
func (e *Evaluator) reason(points []Datapoint, d Decision) string {
	a := &e.alarm
	if len(d.Evaluated) == 0 && d.Filled == 0 {
		return fmt.Sprintf("Insufficient Data: %d datapoints were unknown.", len(points))
	}
	var vals []string
	var count int
	for j := len(d.Evaluated) - 1; j >= 0; j-- {
		p := points[d.Evaluated[j]]
		if p.Breaching == (d.State == StateAlarm) {
			vals = append(vals, fmt.Sprintf("%s (%s)", fmtFloat(p.Value), p.Time.UTC().Format("02/01/06 15:04:05")))
			count++
		}
	}
	if d.State == StateInsufficientData {
		return fmt.Sprintf("Insufficient Data: %d of the last %d datapoints were unknown and %d breaching datapoint(s) are not enough for ALARM.", len(points)-len(d.Evaluated), len(points), d.Breaching)
	}
	verb := "were"
	noun := "datapoints"
	if count == 1 {
		verb, noun = "was", "datapoint"
	}
	cmp := opWords[a.ComparisonOperator]
	if d.State == StateOK {
		cmp = "not " + cmp
	}
	s := fmt.Sprintf("Threshold Crossed: %d out of the last %d %s [%s] %s %s the threshold (%s)",
		count, a.EvaluationPeriods, noun, strings.Join(vals, ", "), verb, cmp, fmtFloat(a.Threshold))
	if d.Filled > 0 {
		s += fmt.Sprintf(" (%d missing datapoints treated as %s)", d.Filled, a.tmd())
	}
	if d.State == StateAlarm {
		s += fmt.Sprintf(" (minimum %d datapoints for %s -> ALARM transition)", a.m(), e.state)
	}
	return s + "."
}

func fmtFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}
