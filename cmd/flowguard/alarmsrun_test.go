package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAlarmsRunOnRecordTime runs the classic "REJECT spike" metric filter
// and alarm over records on their own timestamps: quiet minutes, a burst of
// rejects, quiet again. The alarm must go to ALARM in the burst's minute
// and back to OK after it, as CloudWatch would.
func TestAlarmsRunOnRecordTime(t *testing.T) {
	dir := t.TempDir()
	cfg := `alarms:
  metric_filters:
    - name: rejects
      pattern: '[version, account, eni, source, destination, srcport, destport, protocol, packets, bytes, windowstart, windowend, action="REJECT", flowlogstatus]'
      metric_name: Rejects
      namespace: FlowGuard
      value: "1"
      default_value: 0
  alarms:
    - name: reject-spike
      namespace: FlowGuard
      metric_name: Rejects
      statistic: Sum
      period: 60
      evaluation_periods: 1
      threshold: 10
      comparison_operator: GreaterThanOrEqualToThreshold
      treat_missing_data: notBreaching
`
	conf := writeConfig(t, dir, cfg)
	start := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).Unix()
	var b strings.Builder
	line := func(ts int64, action string) {
		b.WriteString("2 123456789010 eni-1 198.51.100.7 10.0.1.10 50000 22 6 1 40 ")
		b.WriteString(strconv.FormatInt(ts, 10) + " " + strconv.FormatInt(ts+30, 10) + " " + action + " OK\n")
	}
	for m := int64(0); m < 10; m++ {
		ts := start + m*60 + 5
		line(ts, "ACCEPT")
		if m == 4 { // the burst: 12 rejects in minute 4
			for i := int64(0); i < 12; i++ {
				line(ts+i, "REJECT")
			}
		}
	}
	logs := filepath.Join(dir, "flows.log")
	os.WriteFile(logs, []byte(b.String()), 0o644)

	out, stderr, code := execute(t, "", "alarms", "run", "--config", conf, "-o", "json", logs)
	checkAlarmChanges(t, out, stderr, code, start)

	// The same changes, sent to Slack through a response route, as
	// CloudWatch sends them to an alarm's SNS action.
	hook := newSlackHook(t)
	writeConfig(t, dir, cfg+`response:
  routes:
    - name: alarms
      alarms: ["*"]
      notify: [oncall-slack]
`+slackNotify(hook.URL))
	_, stderr, code = execute(t, "", "alarms", "run", "--respond", "--db", filepath.Join(dir, "f.db"), "--config", conf, logs)
	if code != 0 {
		t.Fatalf("--respond: exit %d: %s", code, stderr)
	}
	if got := hook.messages(); !strings.Contains(strings.Join(got, ""), "reject-spike") {
		t.Errorf("Slack got no message about reject-spike: %q\n%s", got, stderr)
	}
}

func checkAlarmChanges(t *testing.T, out, stderr string, code int, start int64) {
	t.Helper()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var changes []struct {
		Alarm, From, To string
		Time            time.Time
	}
	if err := json.Unmarshal([]byte(out), &changes); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	var toAlarm, toOK []time.Time
	for _, c := range changes {
		switch c.To {
		case "ALARM":
			toAlarm = append(toAlarm, c.Time)
		case "OK":
			toOK = append(toOK, c.Time)
		}
	}
	burstEnd := time.Unix(start+5*60, 0).UTC() // the end of minute 4's period
	if len(toAlarm) != 1 || !toAlarm[0].Equal(burstEnd) {
		t.Errorf("want one ALARM at %v, got %v (all: %+v)", burstEnd, toAlarm, changes)
	}
	if len(toOK) == 0 || !toOK[len(toOK)-1].After(burstEnd) {
		t.Errorf("want a return to OK after the burst, got %+v", changes)
	}
}
