package alarm

import "time"

// Clock drives an Engine on event time: log events are fed to it in
// arrival order, and every alarm is evaluated at each multiple of Every
// once an event at least Lateness later than that time has been seen.
// An evaluation at time T sees the events before T (CloudWatch's period
// ending at T). The replay tests (alarms test), alarms run and the
// daemon all use it, so that the three judge the same events the same way.
type Clock struct {
	Engine *Engine
	// Every is the evaluation step; 0 means one minute.
	Every time.Duration
	// Lateness is how late an event may arrive and still count.
	Lateness time.Duration

	next   time.Time // next evaluation; zero until Start or the first event
	newest time.Time // newest event seen
}

func (c *Clock) every() time.Duration {
	if c.Every <= 0 {
		return time.Minute
	}
	return c.Every
}

// Start sets the first evaluation at t plus one step; without it, the
// first evaluation is at the end of the first event's step.
func (c *Clock) Start(t time.Time) { c.next = t.Add(c.every()) }

// Next returns the next evaluation time (zero before Start or the first
// event), for a caller that saves the clock's progress.
func (c *Clock) Next() time.Time { return c.next }

// Newest returns the newest event time seen.
func (c *Clock) Newest() time.Time { return c.newest }

// Observe evaluates the alarms due before an event at ts can count, then
// feeds the event. It returns the state changes of those evaluations.
func (c *Clock) Observe(ts time.Time, line []byte) []StateChange {
	if c.next.IsZero() {
		c.next = ts.Truncate(c.every()).Add(c.every())
	}
	if ts.After(c.newest) {
		c.newest = ts
	}
	changes := c.Until(c.newest.Add(-c.Lateness))
	c.Engine.Observe(ts, line)
	return changes
}

// Until evaluates every step time up to and including t.
func (c *Clock) Until(t time.Time) []StateChange {
	if c.next.IsZero() {
		return nil
	}
	var out []StateChange
	for ; !c.next.After(t); c.next = c.next.Add(c.every()) {
		out = append(out, c.Engine.Evaluate(c.next)...)
	}
	return out
}

// Drain evaluates up to the newest event plus the alarms' longest
// evaluation range, as at the end of the input, so that missing data is
// judged too.
func (c *Clock) Drain(cfg *Config) []StateChange {
	if c.newest.IsZero() {
		return nil
	}
	return c.Until(c.newest.Add(MaxRange(cfg)))
}

// MaxRange is the longest evaluation range of cfg's alarms (period times
// evaluation periods, plus two periods), at least a minute.
func MaxRange(cfg *Config) time.Duration {
	d := time.Minute
	if cfg == nil {
		return d
	}
	for _, a := range cfg.Alarms {
		if r := time.Duration(a.Period*(a.EvaluationPeriods+2)) * time.Second; r > d {
			d = r
		}
	}
	return d
}
