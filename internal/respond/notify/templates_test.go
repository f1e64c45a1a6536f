package notify

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/respond"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func sshFinding() *finding.Finding {
	return &finding.Finding{
		ID:        "3f1c2a9d8e7b6a5c4d3e2f1a0b9c8d7e",
		Type:      "UnauthorizedAccess:EC2/SSHBruteForce",
		Severity:  finding.Low,
		Title:     "198.51.100.23 tried 1,042 SSH logins on 10.0.1.10",
		Actor:     finding.Actor{IP: netip.MustParseAddr("198.51.100.23"), Direction: finding.Inbound},
		Target:    finding.Target{IP: netip.MustParseAddr("10.0.1.10"), InterfaceID: "eni-0a1b2c3d4e5f60718", InstanceID: "i-0123456789abcdef0", Ports: []uint16{22}},
		Count:     1042,
		FirstSeen: t0,
		LastSeen:  t0.Add(2*time.Minute + 30*time.Second),
	}
}

func dosFinding() *finding.Finding {
	return &finding.Finding{
		ID:        "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
		Type:      "Backdoor:EC2/DenialOfService.Udp",
		Severity:  8.0,
		Title:     "10.0.2.5 sent 2.1 GB of UDP to 192.0.2.80 in 5 minutes",
		Actor:     finding.Actor{IP: netip.MustParseAddr("10.0.2.5"), Direction: finding.Outbound, InstanceID: "i-0fedcba9876543210", InterfaceID: "eni-0f1e2d3c4b5a69788"},
		Target:    finding.Target{IP: netip.MustParseAddr("192.0.2.80"), Ports: []uint16{53}},
		Count:     180234,
		FirstSeen: t0.Add(time.Hour),
		LastSeen:  t0.Add(time.Hour + 5*time.Minute),
	}
}

func scanFinding() *finding.Finding {
	return &finding.Finding{
		ID:        "0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f",
		Type:      "Recon:EC2/Portscan",
		Severity:  finding.Medium,
		Title:     "203.0.113.99 scanned 1,000 ports on 10.0.1.10",
		Actor:     finding.Actor{IP: netip.MustParseAddr("203.0.113.99"), Direction: finding.Inbound},
		Target:    finding.Target{IP: netip.MustParseAddr("10.0.1.10"), Ports: []uint16{21, 22, 23, 25, 80, 110, 143, 443, 445, 3306, 3389, 8080}},
		Count:     1000,
		FirstSeen: t0,
		LastSeen:  t0.Add(4 * time.Minute),
	}
}

func alarmChange() *alarm.StateChange {
	return &alarm.StateChange{
		Alarm:  "vpc-reject-burst",
		From:   alarm.StateOK,
		To:     alarm.StateAlarm,
		Reason: "Threshold Crossed: 2 out of the last 3 datapoints [612.0, 530.0] were greater than the threshold (500.0).",
		Time:   t0.Add(3 * time.Minute),
		Datapoints: []alarm.Datapoint{
			{Time: t0, Value: 120},
			{Time: t0.Add(time.Minute), Value: 612, Breaching: true},
			{Time: t0.Add(2 * time.Minute), Value: 530, Breaching: true},
		},
		Actions: []string{"arn:aws:sns:ap-northeast-1:123456789012:oncall"},
	}
}

// goldenCases are the messages an operator is most likely to get.
func goldenCases() map[string]Data {
	now := t0.Add(10 * time.Minute)
	ssh, dos, scan := sshFinding(), dosFinding(), scanFinding()
	return map[string]Data{
		"finding-dryrun": {
			Events: []respond.Event{{Finding: ssh}},
			Actions: []Action{{FindingID: ssh.ID, Kind: ActionWouldBan, Prefix: netip.MustParsePrefix("198.51.100.23/32"),
				Target: "nacl:acl-0123456789abcdef0", Expires: t0.Add(time.Hour + 2*time.Minute)}},
			DryRun: true, Now: now,
		},
		"finding-blocked-outbound": {
			Events: []respond.Event{{Finding: dos, Updated: true}},
			Actions: []Action{{FindingID: dos.ID, Kind: ActionRefused, Prefix: netip.MustParsePrefix("10.0.2.5/32"),
				Reason: "10.0.2.5 is in a home network (10.0.0.0/16)"}},
			Now: now, Link: "https://flowguard.example.com/findings/" + dos.ID,
		},
		"digest": {
			Events: []respond.Event{{Finding: scan}, {Finding: ssh}, {Alarm: alarmChange()}},
			Actions: []Action{{FindingID: scan.ID, Kind: ActionBlocked, Prefix: netip.MustParsePrefix("203.0.113.99/32"),
				Target: "nacl:acl-0123456789abcdef0", Expires: t0.Add(24 * time.Hour)}},
			Now: now,
		},
		"alarm": {Events: []respond.Event{{Alarm: alarmChange()}}, Now: now},
	}
}

func TestTemplatesGolden(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{English, Japanese} {
		loc := time.UTC
		if lang == Japanese {
			loc = tokyo
		}
		tm, err := NewTemplates(lang, loc)
		if err != nil {
			t.Fatal(err)
		}
		for name, d := range goldenCases() {
			t.Run(lang+"/"+name, func(t *testing.T) {
				msg, err := tm.Render(d)
				if err != nil {
					t.Fatal(err)
				}
				got := "Subject: " + msg.Subject + "\n\n" + msg.Text
				path := filepath.Join("testdata", "golden", lang+"-"+name+".txt")
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create)", err)
				}
				if got != string(want) {
					t.Errorf("%s differs from the golden file; got:\n%s", path, got)
				}
				if strings.Contains(got, "<no value>") {
					t.Errorf("unfilled template field in:\n%s", got)
				}
			})
		}
	}
}
