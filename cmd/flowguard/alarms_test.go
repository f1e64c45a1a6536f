package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/internal/alarm"
	"gopkg.in/yaml.v3"
)

func TestAlarmsImport(t *testing.T) {
	tmpl := filepath.Join("testdata", "alarms", "reject-alarm.yaml")
	out, errOut, code := execute(t, "", "alarms", "import", "--param", "Threshold=25", "--param", "Env=prod", tmpl)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "warning:") || !strings.Contains(errOut, "CPUUtilization") {
		t.Errorf("stderr %q: want a warning about the skipped EC2 alarm", errOut)
	}
	var doc struct {
		Alarms alarm.Config `yaml:"alarms"`
	}
	if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output is not YAML: %v\n%s", err, out)
	}
	c := doc.Alarms
	if len(c.MetricFilters) != 1 || len(c.Alarms) != 1 {
		t.Fatalf("imported %d filters, %d alarms; want 1 and 1:\n%s", len(c.MetricFilters), len(c.Alarms), out)
	}
	a := c.Alarms[0]
	if a.Name != "prod-reject-spike" || a.Threshold != 25 || a.Namespace != "VPCFlowLogs/prod" || a.MetricName != "RejectedConnections" {
		t.Errorf("alarm = %+v", a)
	}
	if c.MetricFilters[0].Namespace != "VPCFlowLogs/prod" || !strings.Contains(c.MetricFilters[0].Pattern, `action="REJECT"`) {
		t.Errorf("filter = %+v", c.MetricFilters[0])
	}
	if err := c.Validate(); err != nil {
		t.Errorf("imported config does not validate: %v", err)
	}

	// --output FILE writes the same section; - reads standard input.
	src, err := os.ReadFile(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "alarms.yaml")
	stdout, errOut, code := execute(t, string(src), "alarms", "import", "-p", "Threshold=25", "-p", "Env=prod", "--output", dst, "-")
	if code != 0 || stdout != "" {
		t.Fatalf("import to file: exit %d stdout %q stderr %q", code, stdout, errOut)
	}
	if got, _ := os.ReadFile(dst); string(got) != out {
		t.Errorf("file differs from standard output:\n%s\n---\n%s", got, out)
	}

	// A parameter without a default that is not given is an error.
	if _, errOut, code := execute(t, "", "alarms", "import", tmpl); code != 1 || !strings.Contains(errOut, "Threshold") {
		t.Errorf("missing parameter: exit %d %q", code, errOut)
	}
	if _, errOut, code := execute(t, "", "alarms", "import", "--param", "NoEquals", tmpl); code != 1 || !strings.Contains(errOut, "Name=Value") {
		t.Errorf("bad --param: exit %d %q", code, errOut)
	}
	if _, errOut, code := execute(t, "", "alarms", "import", filepath.Join(t.TempDir(), "none.yaml")); code != 1 || !strings.Contains(errOut, "cannot open template") {
		t.Errorf("missing file: exit %d %q", code, errOut)
	}
}

func TestAlarmsTest(t *testing.T) {
	pass := filepath.Join("testdata", "alarms", "replay-pass.yaml")
	out, errOut, code := execute(t, "", "alarms", "test", pass)
	if code != 0 || !strings.Contains(out, "PASSED: three rejects in a minute") || !strings.Contains(out, "SUCCESS: 1 test(s) passed") {
		t.Fatalf("passing file: exit %d\n%s%s", code, out, errOut)
	}

	// The same file expecting ALARM one minute late fails with a diff.
	src, err := os.ReadFile(pass)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(src), "      - at: 1m\n", "      - at: 2m\n", 1)
	if bad == string(src) {
		t.Fatal("fixture changed: cannot make the failing variant")
	}
	failing := filepath.Join(t.TempDir(), "replay-fail.yaml")
	if err := os.WriteFile(failing, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = execute(t, "", "alarms", "test", pass, failing)
	if code != 1 {
		t.Fatalf("failing file: exit %d, want 1\n%s", code, out)
	}
	if !strings.Contains(out, "FAILED: three rejects in a minute") || !strings.Contains(out, "state change 1: got at 1m0s reject-spike INSUFFICIENT_DATA -> ALARM") ||
		!strings.Contains(out, "want at 2m") || !strings.Contains(errOut, "1 of 2 alarm test(s) failed") {
		t.Errorf("failure report:\n%s\nstderr: %s", out, errOut)
	}

	broken := filepath.Join(t.TempDir(), "broken.yaml")
	os.WriteFile(broken, []byte("tests: [\n"), 0o644)
	out, errOut, code = execute(t, "", "alarms", "test", broken)
	if code != 1 || !strings.Contains(out, "FAILED") || !strings.Contains(errOut, "could not be run") {
		t.Errorf("broken file: exit %d\n%s\n%s", code, out, errOut)
	}
}
