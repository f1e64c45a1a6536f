package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
)

func TestDetectJSONAndStore(t *testing.T) {
	path, g := genFile(t, 60000, 4)
	db := filepath.Join(t.TempDir(), "f.db")
	threats := filepath.Join(t.TempDir(), "threats.txt")
	var tl strings.Builder
	tl.WriteString("# generated threat list\n")
	for _, a := range g.ThreatList() {
		tl.WriteString(a.String() + "\n")
	}
	os.WriteFile(threats, []byte(tl.String()), 0o644)
	out, stderr, code := execute(t, "", "detect", "--home", "10.0.0.0/16", "--home", "2600:1f18:abc::/56",
		"--threat-list", threats, "--output", "json", "--db", db, path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var fs []finding.Finding
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatalf("not a JSON array of findings: %v\n%s", err, out[:min(len(out), 500)])
	}
	byType := map[string]int{}
	for _, f := range fs {
		byType[f.Type]++
		if f.ID == "" || f.Title == "" || f.FirstSeen.IsZero() || f.Count <= 0 {
			t.Errorf("incomplete finding %+v", f)
		}
	}
	for _, l := range g.Labels() {
		if byType[l.Type] == 0 {
			t.Errorf("no %s finding for labelled %s", l.Type, l.Scenario)
		}
	}
	if !strings.Contains(stderr, "recorded") {
		t.Errorf("stderr %q: want a note of the findings recorded", stderr)
	}
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored, err := st.ListFindings(context.Background(), finding.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(fs) {
		t.Errorf("store holds %d findings, output %d", len(stored), len(fs))
	}
	// A second run updates the same findings instead of adding new ones.
	_, stderr, code = execute(t, "", "detect", "--home", "10.0.0.0/16", "--home", "2600:1f18:abc::/56",
		"--threat-list", threats, "--output", "json", "--db", db, path)
	if code != 0 || !strings.Contains(stderr, "recorded 0 new") {
		t.Errorf("second run: exit %d, %q: want 0 new findings", code, stderr)
	}
}

func TestDetectExplainAndTable(t *testing.T) {
	path, _ := genFile(t, 60000, 4)
	out, stderr, code := execute(t, "", "detect", "--no-db", "--home", "10.0.0.0/16", "--explain", "198.51.100.23", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Recon:EC2/Portscan", "rule:", "thresholds: min_ports=15", "distinct_ports=", "records:", "flows.log:"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
	out, _, code = execute(t, "", "detect", "--no-db", "--home", "10.0.0.0/16", path)
	if code != 0 || !strings.Contains(out, "SEVERITY") || !strings.Contains(out, "scanned") {
		t.Errorf("table output (exit %d):\n%s", code, out)
	}
	out, _, _ = execute(t, "", "detect", "--no-db", "--explain", "192.0.2.99", path)
	if !strings.Contains(out, "no finding names 192.0.2.99") {
		t.Errorf("explain of an unknown IP: %s", out)
	}
}

func TestDetectLookalikeAndSkipped(t *testing.T) {
	data, err := os.ReadFile("../../internal/detect/testdata/lookalikes/return-traffic.log")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "rt.log")
	os.WriteFile(p, append(data, []byte("2 123456789012 eni-1 not-an-ip 10.0.1.30 443 5 6 1 1 1 1 REJECT OK\n")...), 0o644)
	out, stderr, code := execute(t, "", "detect", "--no-db", "--home", "10.0.0.0/16", "-o", "json", p)
	if code != 2 {
		t.Errorf("exit %d, want 2 for a skipped line (%s)", code, stderr)
	}
	var fs []finding.Finding
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Type != "Policy:EC2/StatelessReturnTrafficRejected" {
		t.Errorf("want only the stateless-ACL policy finding, got %+v", fs)
	}
}

func TestDetectConfigFile(t *testing.T) {
	path, _ := genFile(t, 60000, 4)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "home_networks: [10.0.0.0/16]\nsuppression_rules:\n  - name: scans\n    types: [\"Recon:*\"]\ndetectors:\n  brute_force:\n    enabled: false\n")
	out, stderr, code := execute(t, "", "detect", "--no-db", "--config", cfg, "-o", "json", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var fs []finding.Finding
	json.Unmarshal([]byte(out), &fs)
	recon := 0
	for _, f := range fs {
		if strings.HasSuffix(f.Type, "BruteForce") {
			t.Errorf("brute force disabled, got %s", f.Title)
		}
		if strings.HasPrefix(f.Type, "Recon:") {
			recon++
			if !f.Archived {
				t.Errorf("suppression rule should archive %s", f.Title)
			}
		}
	}
	if recon == 0 {
		t.Error("no Recon findings to check the suppression rule on")
	}
	os.WriteFile(cfg, []byte("detectors:\n  portscan:\n    min_port: 3\n"), 0o644)
	_, stderr, code = execute(t, "", "detect", "--no-db", "--config", cfg, path)
	if code != 1 || !strings.Contains(stderr, "flowguard.yaml:3:5") {
		t.Errorf("bad config: exit %d, %q", code, stderr)
	}
}

func TestConfigCommands(t *testing.T) {
	out, _, code := execute(t, "", "config", "default")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	c, err := config.Parse([]byte(out), "default")
	if err != nil {
		t.Fatalf("config default does not parse: %v", err)
	}
	if c.Detectors.Portscan.MinPorts != 15 || len(c.HomeNetworks) != 5 {
		t.Errorf("defaults: %+v", c.Detectors.Portscan)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(filepath.Join(dir, "bad-ips.txt"), []byte("192.0.2.1\n192.0.2.0/28 # more\n"), 0o644)
	os.WriteFile(good, []byte("threat_lists: [bad-ips.txt]\nallowlist: [203.0.113.0/24]\n"), 0o644)
	out, stderr, code := execute(t, "", "config", "check", good)
	if code != 0 || !strings.Contains(out, "ok") || !strings.Contains(out, "2 threat list entries") {
		t.Errorf("check good: exit %d, %q %q", code, out, stderr)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("allowlist: [203.0.113.0/24]\nalowlist: []\n"), 0o644)
	_, stderr, code = execute(t, "", "config", "check", bad)
	if code != 1 || !strings.Contains(stderr, `bad.yaml:2:1: alowlist: unknown key "alowlist" (did you mean "allowlist"?)`) {
		t.Errorf("check bad: exit %d, %q", code, stderr)
	}
}

func TestDetectBaseline(t *testing.T) {
	path, _ := genFile(t, 30000, 8)
	out, stderr, code := execute(t, "", "detect", "--no-db", "--home", "10.0.0.0/16", "--baseline", path, "-o", "json", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var fs []finding.Finding
	if err := json.Unmarshal([]byte(out), &fs); err != nil || len(fs) == 0 {
		t.Errorf("findings after a baseline: %v %d", err, len(fs))
	}
}
