package respond

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/alarm"
)

// notifyEnv notifies only (no blocking), with the given routes.
func notifyEnv(t *testing.T, routes ...Route) *env {
	return newEnv(t, func(c *Config) {
		c.NACL = nil
		c.Routes = routes
	})
}

func TestRoutingByTypeAndSeverity(t *testing.T) {
	e := notifyEnv(t,
		Route{Types: []string{"Recon:*"}, MinSeverity: 5, Notify: []string{"rec"}},
		Route{Types: []string{"UnauthorizedAccess:EC2/SSHBruteForce"}, Notify: []string{"rec"}},
	)
	brute := attack("198.51.100.1", 2, t0) // exact type, any severity
	scanLow := attack("198.51.100.2", 4.9, t0)
	scanLow.Type, scanLow.ID = "Recon:EC2/Portscan", "scan-low"
	scanHigh := attack("198.51.100.3", 5, t0)
	scanHigh.Type, scanHigh.ID = "Recon:EC2/Portscan", "scan-high"
	other := attack("198.51.100.4", 8, t0)
	other.Type, other.ID = "Impact:EC2/InboundFlood", "flood"
	e.handle(ev(brute), ev(scanLow), ev(scanHigh), ev(other))
	var ids []string
	for _, m := range e.rec.msgs {
		for _, x := range m.Events {
			ids = append(ids, x.Finding.ID)
		}
	}
	want := map[string]bool{brute.ID: true, "scan-high": true}
	if len(ids) != len(want) {
		t.Fatalf("notified %v, want %v", ids, want)
	}
	for _, id := range ids {
		if !want[id] {
			t.Errorf("notified %s", id)
		}
	}
}

func TestDigestGrouping(t *testing.T) {
	e := notifyEnv(t, Route{Types: []string{"*"}, Notify: []string{"rec"}, GroupBy: []string{"type"}})
	a := attack("198.51.100.1", 8, t0)
	b := attack("198.51.100.2", 8, t0)
	c := attack("198.51.100.3", 5, t0)
	c.Type, c.ID = "Recon:EC2/Portscan", "scan"
	rep := e.handle(ev(a), ev(b), ev(c))
	if rep.Notified != 2 || e.rec.count() != 2 {
		t.Fatalf("%d messages, want 2 (one per type)", e.rec.count())
	}
	if n := len(e.rec.msgs[0].Events); n != 2 {
		t.Errorf("first digest has %d events, want 2", n)
	}
}

func TestPublishingFrequencyAndRepeat(t *testing.T) {
	e := notifyEnv(t, Route{Types: []string{"*"}, Notify: []string{"rec"}, PublishingFrequency: "ONE_HOUR", RepeatInterval: Duration(4 * time.Hour)})
	f := attack("198.51.100.1", 5, t0)
	step := func(d time.Duration, mutate func(), want int, why string) {
		t.Helper()
		e.clock.Advance(d)
		mutate()
		before := e.rec.count()
		e.handle(Event{Finding: f, Updated: true})
		if got := e.rec.count() - before; got != want {
			t.Fatalf("%s: %d messages, want %d", why, got, want)
		}
	}
	same := func() {}
	more := func() { f.Count += 10; f.LastSeen = e.clock.Now() }
	step(0, same, 1, "new finding")
	step(time.Minute, same, 0, "unchanged, same run again")
	step(10*time.Minute, more, 0, "updated within the hour")
	step(50*time.Minute, same, 1, "the update, an hour after the last message")
	step(time.Hour, same, 0, "unchanged, before the repeat interval")
	step(3*time.Hour, same, 1, "unchanged, repeat interval reached")
	step(time.Minute, func() { f.Severity = 7.5; f.LastSeen = e.clock.Now() }, 1, "severity rose to High: at once")
}

func TestAlarmRouting(t *testing.T) {
	e := notifyEnv(t, Route{Alarms: []string{"reject-spike"}, Notify: []string{"rec"}})
	sc := &alarm.StateChange{Alarm: "reject-spike", From: alarm.StateOK, To: alarm.StateAlarm, Reason: "threshold crossed", Time: t0}
	other := &alarm.StateChange{Alarm: "other", From: alarm.StateOK, To: alarm.StateAlarm, Time: t0}
	e.handle(Event{Alarm: sc}, Event{Alarm: other})
	e.handle(Event{Alarm: sc}) // replayed: not twice
	if e.rec.count() != 1 || e.rec.msgs[0].Events[0].Alarm.Alarm != "reject-spike" {
		t.Fatalf("messages %+v", e.rec.msgs)
	}
	if !strings.Contains(e.rec.msgs[0].Subject, "reject-spike") {
		t.Errorf("subject %q", e.rec.msgs[0].Subject)
	}
}

func TestNotifierFailureQueuedNotLostNotTwice(t *testing.T) {
	e := notifyEnv(t, Route{Types: []string{"*"}, Notify: []string{"rec"}})
	e.cfg.Retry.MaxAttempts = 2
	e.restart()
	e.rec.fail = 2
	f := attack("198.51.100.1", 8, t0)
	rep := e.handle(ev(f))
	if rep.Queued != 1 || e.rec.count() != 0 {
		t.Fatalf("queued %d, delivered %d", rep.Queued, e.rec.count())
	}
	if len(e.audit(AuditNotifyFailed)) != 1 {
		t.Error("the failure is not audited")
	}
	// A new process: the queued message goes out, the finding is not
	// notified a second time.
	e.restart()
	rep = e.handle(ev(f))
	if rep.Notified != 1 || e.rec.count() != 1 {
		t.Fatalf("after restart: notified %d, delivered %d", rep.Notified, e.rec.count())
	}
	e.handle(ev(f))
	if e.rec.count() != 1 {
		t.Errorf("%d deliveries, want 1", e.rec.count())
	}
	if as := e.audit(AuditNotify); len(as) != 1 || as[0].FindingID != f.ID {
		t.Errorf("notify audit %+v", as)
	}
}

func TestDefaultRenderSubject(t *testing.T) {
	f := attack("198.51.100.1", 8, t0)
	f.Title = strings.Repeat("very long title\n", 20)
	m, err := DefaultRender([]Event{ev(f)}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := len([]rune(m.Subject)); n >= 100 {
		t.Errorf("subject has %d characters; SNS wants fewer than 100", n)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		t.Errorf("subject has a line break: %q", m.Subject)
	}
	if !strings.Contains(m.Text, "dry-run") {
		t.Errorf("text does not say dry-run: %q", m.Text)
	}
}

// TestNotificationsByNotifier: the report counts each notifier's
// messages by result: delivered, queued when its notifier fails and may
// be retried, delivered on a later run.
func TestNotificationsByNotifier(t *testing.T) {
	e := notifyEnv(t, Route{Types: []string{"*"}, Notify: []string{"rec"}})
	down := &recorder{name: "down", fail: 100}
	e.extra = []Notifier{down}
	e.cfg.Routes = []Route{{Types: []string{"*"}, Notify: []string{"rec", "down"}}}
	e.cfg.Retry.MaxAttempts = 2
	e.restart()
	rep := e.handle(ev(attack("198.51.100.1", 8, t0)))
	want := map[NotifyCount]int{{"rec", NotifyDelivered}: 1, {"down", NotifyQueued}: 1}
	if !maps.Equal(rep.Notifications, want) {
		t.Fatalf("notifications %v, want %v", rep.Notifications, want)
	}
	down.mu.Lock()
	down.fail = 0
	down.mu.Unlock()
	rep = e.handle()
	if want := map[NotifyCount]int{{"down", NotifyDelivered}: 1}; !maps.Equal(rep.Notifications, want) {
		t.Fatalf("after the notifier recovered: %v, want %v", rep.Notifications, want)
	}
	if rep.Notified != 1 || rep.Queued != 0 {
		t.Errorf("totals: %d notified, %d queued; want 1, 0", rep.Notified, rep.Queued)
	}
}
