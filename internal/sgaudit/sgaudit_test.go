package sgaudit

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/source"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// audit runs an audit of the inventory in dir over the flow log files.
func audit(t *testing.T, dir string, opts Options, logs ...string) *Report {
	t.Helper()
	inv, err := LoadFiles(filepath.Join(dir, "groups.json"), filepath.Join(dir, "interfaces.json"), filepath.Join(dir, "prefix-lists.json"))
	if err != nil {
		t.Fatal(err)
	}
	a := New(inv, opts)
	var paths []string
	for _, l := range logs {
		paths = append(paths, filepath.Join(dir, l))
	}
	inputs, err := source.Expand(context.Background(), paths, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	skipped := &flowlog.Skipped{Keep: 5}
	if err := a.Scan(context.Background(), &flowlog.Scanner{Errors: skipped}, inputs); err != nil {
		t.Fatal(err)
	}
	if skipped.Count() > 0 {
		t.Fatalf("skipped lines: %v", skipped.First())
	}
	return a.Report()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func find(t *testing.T, rep *Report, group, dir, proto string, from int32, src string) RuleVerdict {
	t.Helper()
	for _, v := range rep.Rules {
		if v.GroupID == group && v.Direction == dir && v.Protocol == proto && v.FromPort == from && v.Source == src {
			return v
		}
	}
	t.Fatalf("no rule %s %s %s %d %s", group, dir, proto, from, src)
	return RuleVerdict{}
}

// TestHandBuiltAccount judges every rule of a small account whose traffic
// exercises each matching rule.
func TestHandBuiltAccount(t *testing.T) {
	rep := audit(t, "testdata/account", Options{}, "flows-v5.log", "flows-v2.log")
	tests := []struct {
		name              string
		group, dir, proto string
		from              int32
		source            string
		verdict           string
		hits, distinct    int64
		narrow            []string
	}{
		{"https from the world, six networks", "sg-0web", "ingress", "tcp", 443, "0.0.0.0/0", VerdictUsed, 6, 6, nil},
		{"IPv6 https", "sg-0web", "ingress", "tcp", 443, "::/0", VerdictBroader, 1, 1, []string{"2001:db8::5/128"}},
		{"ephemeral ports only see replies: return traffic is no use", "sg-0web", "ingress", "tcp", 32768, "0.0.0.0/0", VerdictUnused, 0, 0, nil},
		{"ICMP echo (type and code are not in flow logs)", "sg-0web", "ingress", "icmp", 8, "0.0.0.0/0", VerdictBroader, 1, 1, []string{"8.8.4.4/32"}},
		{"narrow rule used", "sg-0web", "ingress", "tcp", 8443, "203.0.113.0/24", VerdictUsed, 1, 1, nil},
		{"egress all, outbound connections (replies to clients not counted)", "sg-0web", "egress", "-1", -1, "0.0.0.0/0", VerdictBroader, 2, 2, []string{"10.0.1.20/32", "151.101.1.1/32"}},
		{"egress IPv6 never used (the IPv6 reply is not a use)", "sg-0web", "egress", "-1", -1, "::/0", VerdictUnused, 0, 0, nil},
		{"SSH from the world, second group of a multi-group interface", "sg-1admin", "ingress", "tcp", 22, "0.0.0.0/0", VerdictBroader, 2, 2, []string{"203.0.113.0/28"}},
		{"prefix list", "sg-1admin", "ingress", "tcp", 3389, "pl-0vpn", VerdictUsed, 1, 1, nil},
		{"protocol -1 from a subnet, by UDP", "sg-1admin", "ingress", "-1", -1, "10.0.5.0/24", VerdictUsed, 1, 1, nil},
		{"group reference resolved through the interfaces' addresses (v5 and v2 records)", "sg-2app", "ingress", "tcp", 8080, "sg-0web", VerdictUsed, 2, 1, nil},
		{"only a rejected flow (a network ACL) and a record of an interface outside the inventory", "sg-2app", "ingress", "tcp", 9090, "10.0.0.0/16", VerdictUnused, 0, 0, nil},
		{"egress to a group", "sg-2app", "egress", "tcp", 5432, "sg-3db", VerdictUsed, 1, 1, nil},
		{"egress to a managed prefix list", "sg-2app", "egress", "tcp", 443, "pl-63a5400a", VerdictUsed, 1, 1, nil},
		{"database from the app group", "sg-3db", "ingress", "tcp", 5432, "sg-2app", VerdictUsed, 1, 1, nil},
		{"database from IPv6 VPC range, unused", "sg-3db", "ingress", "tcp", 5432, "2600:1f18:abc::/56", VerdictUnused, 0, 0, nil},
		{"interface without flow logs: no verdict", "sg-4mon", "ingress", "udp", 161, "10.0.0.0/16", VerdictUnknown, 0, 0, nil},
		{"group attached to nothing", "sg-5orphan", "ingress", "tcp", 21, "0.0.0.0/0", VerdictUnused, 0, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := find(t, rep, tt.group, tt.dir, tt.proto, tt.from, tt.source)
			if v.Verdict != tt.verdict || v.Hits != tt.hits || v.DistinctSources != tt.distinct {
				t.Errorf("verdict %s, %d hits, %d sources; want %s, %d, %d (%s)", v.Verdict, v.Hits, v.DistinctSources,
					tt.verdict, tt.hits, tt.distinct, v.Suggestion)
			}
			if tt.narrow != nil && !equal(v.Narrow, tt.narrow) {
				t.Errorf("narrow %v, want %v", v.Narrow, tt.narrow)
			}
		})
	}
	if len(rep.Rules) != len(tests) {
		t.Errorf("%d rules judged, want %d", len(rep.Rules), len(tests))
	}
	if rep.Short {
		t.Errorf("period %s called short", rep.Period)
	}
	if rep.Period != 200*time.Hour {
		t.Errorf("period %s, want 200h", rep.Period)
	}
	if len(rep.Silent) != 1 || rep.Silent[0] != "eni-mon" {
		t.Errorf("silent interfaces %v, want [eni-mon]", rep.Silent)
	}
	if rep.Unmatched != 0 || rep.Foreign != 1 {
		t.Errorf("unmatched %d foreign %d, want 0 and 1", rep.Unmatched, rep.Foreign)
	}
	if len(rep.Wanted) != 1 || rep.Wanted[0].Port != 8443 || rep.Wanted[0].DistinctSources != 12 {
		t.Errorf("wanted rejects %+v, want 12 sources on 8443", rep.Wanted)
	}

	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "account.txt", buf.Bytes())
	buf.Reset()
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "account.json", buf.Bytes())
	buf.Reset()
	if err := rep.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "account.csv", buf.Bytes())
	buf.Reset()
	rep.WriteCommands(&buf)
	golden(t, "account.sh", buf.Bytes())
	buf.Reset()
	rep.WriteTerraform(&buf)
	golden(t, "account.tf", buf.Bytes())
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
