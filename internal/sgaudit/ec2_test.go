package sgaudit

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/source"
	"github.com/flowguard/flowguard/internal/store"
)

// serveAccount loads the hand-built account into a wire-protocol EC2
// server.
func serveAccount(t *testing.T) (*awstest.EC2, *Inventory) {
	t.Helper()
	dir := "testdata/account"
	inv, err := LoadFiles(filepath.Join(dir, "groups.json"), filepath.Join(dir, "interfaces.json"), filepath.Join(dir, "prefix-lists.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := awstest.NewEC2(t)
	for _, g := range inv.Groups {
		sg := awstest.SecurityGroup{ID: g.ID, Name: g.Name, VPC: g.VPCID}
		for _, r := range g.Rules {
			x := awstest.SecurityGroupRule{Egress: r.Egress, Protocol: r.Protocol, FromPort: r.FromPort, ToPort: r.ToPort,
				PrefixList: r.PrefixListID, RefGrp: r.RefGroupID, Description: r.Description}
			if r.CIDR.IsValid() && r.CIDR.Addr().Is4() {
				x.CIDRv4 = r.CIDR.String()
			} else if r.CIDR.IsValid() {
				x.CIDRv6 = r.CIDR.String()
			}
			sg.Rules = append(sg.Rules, x)
		}
		srv.AddSecurityGroup(sg)
	}
	for _, ifc := range inv.Interfaces {
		ni := awstest.NetworkInterface{ID: ifc.ID, VPC: "vpc-0123456789abcdef0", Subnet: "subnet-0a", Groups: ifc.Groups}
		for _, a := range ifc.Addrs {
			switch {
			case a.Is6():
				ni.IPv6Addrs = append(ni.IPv6Addrs, a.String())
			case a.IsPrivate():
				ni.PrivateIP = a.String()
			}
		}
		srv.AddNetworkInterface(ni)
	}
	for id, pfs := range inv.PrefixLists {
		pl := awstest.PrefixList{ID: id, Name: id}
		for _, p := range pfs {
			pl.Entries = append(pl.Entries, p.String())
		}
		srv.AddPrefixList(pl)
	}
	return srv, inv
}

func runAudit(t *testing.T, inv *Inventory, opts Options) *Report {
	t.Helper()
	a := New(inv, opts)
	inputs, err := source.Expand(context.Background(), []string{"testdata/account/flows-v5.log", "testdata/account/flows-v2.log"}, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Scan(context.Background(), &flowlog.Scanner{}, inputs); err != nil {
		t.Fatal(err)
	}
	return a.Report()
}

type verdictKey struct{ group, dir, proto, ports, source, verdict string }

func verdicts(rep *Report) map[verdictKey]int64 {
	m := map[verdictKey]int64{}
	for _, v := range rep.Rules {
		m[verdictKey{v.GroupID, v.Direction, v.Protocol, v.Ports(), v.Source, v.Verdict}] = v.Hits
	}
	return m
}

// TestLoadEC2SameVerdicts: the inventory read through the SDK from the
// EC2 API gives the verdicts the CLI's JSON gives.
func TestLoadEC2SameVerdicts(t *testing.T) {
	srv, inv := serveAccount(t)
	c := ec2.NewFromConfig(awstest.ClientConfig(srv.URL))
	apiInv, err := LoadEC2(context.Background(), c, "")
	if err != nil {
		t.Fatal(err)
	}
	// the public address is not modelled by the server; it carries no flow
	// in the fixture
	got, want := verdicts(runAudit(t, apiInv, Options{})), verdicts(runAudit(t, inv, Options{}))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("verdicts from the API:\n%v\nfrom the files:\n%v", got, want)
	}
}

// TestApplyRevokesUnused: --apply revokes exactly the unused rules, by
// rule id, records each in the store's audit trail, leaves used ones, and
// a dry run changes nothing.
func TestApplyRevokesUnused(t *testing.T) {
	ctx := context.Background()
	srv, inv := serveAccount(t)
	c := ec2.NewFromConfig(awstest.ClientConfig(srv.URL))
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "flowguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	audit := func(ctx context.Context, action, subject string, detail []byte) error {
		_, err := st.AppendAudit(ctx, store.AuditEntry{Action: action, Subject: subject, Detail: detail})
		return err
	}
	rep := runAudit(t, inv, Options{})
	before := len(srv.SecurityGroupRules("sg-0web"))

	dry, err := Apply(ctx, c, rep, ApplyOptions{DryRun: true, Audit: audit})
	if err != nil {
		t.Fatal(err)
	}
	if len(dry) != 5 || len(srv.SecurityGroupRules("sg-0web")) != before {
		t.Fatalf("dry run: %d planned (want 5), sg-0web has %d rules (want %d)", len(dry), len(srv.SecurityGroupRules("sg-0web")), before)
	}

	done, err := Apply(ctx, c, rep, ApplyOptions{Audit: audit})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range done {
		if r.Outcome != "revoked" || r.RuleID == "" {
			t.Errorf("%+v: want revoked by rule id", r)
		}
	}
	left := map[string]bool{}
	for _, g := range []string{"sg-0web", "sg-2app", "sg-3db", "sg-4mon", "sg-5orphan"} {
		for _, r := range srv.SecurityGroupRules(g) {
			src := r.CIDRv4 + r.CIDRv6 + r.PrefixList + r.RefGrp
			left[g+" "+r.Protocol+" "+src] = true
		}
	}
	for _, gone := range []string{"sg-0web -1 ::/0", "sg-2app tcp 10.0.0.0/16", "sg-3db tcp 2600:1f18:abc::/56", "sg-5orphan tcp 0.0.0.0/0"} {
		if left[gone] {
			t.Errorf("%s still there", gone)
		}
	}
	for _, kept := range []string{"sg-0web tcp 0.0.0.0/0", "sg-0web -1 0.0.0.0/0", "sg-2app tcp sg-0web", "sg-3db tcp sg-2app", "sg-4mon udp 10.0.0.0/16"} {
		if !left[kept] {
			t.Errorf("%s was revoked", kept)
		}
	}
	if n := len(srv.SecurityGroupRules("sg-0web")); n != before-2 {
		t.Errorf("sg-0web has %d rules, want %d", n, before-2)
	}

	entries, err := st.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range entries {
		count[e.Action]++
		var d Revocation
		if err := json.Unmarshal(e.Detail, &d); err != nil || d.GroupID != e.Subject {
			t.Errorf("audit detail %s: %v", e.Detail, err)
		}
	}
	if count["sg-revoke-dry-run"] != 5 || count["sg-revoke"] != 5 {
		t.Errorf("audit actions %v, want 5 dry-run and 5 revoke", count)
	}

	// Again: the rules are gone, nothing fails.
	again, err := Apply(ctx, c, rep, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range again {
		if r.Outcome != "gone" {
			t.Errorf("second run: %+v, want gone", r)
		}
	}
}

// TestApplyRefusesShortPeriod: with less evidence than MinPeriod nothing
// is revoked.
func TestApplyRefusesShortPeriod(t *testing.T) {
	srv, inv := serveAccount(t)
	c := ec2.NewFromConfig(awstest.ClientConfig(srv.URL))
	rep := runAudit(t, inv, Options{MinPeriod: 30 * 24 * time.Hour})
	if !rep.Short {
		t.Fatal("8 days of logs not short under a 30-day minimum")
	}
	before := len(srv.SecurityGroupRules("sg-2app"))
	if _, err := Apply(context.Background(), c, rep, ApplyOptions{}); !errors.Is(err, ErrShortPeriod) {
		t.Fatalf("err %v, want ErrShortPeriod", err)
	}
	if len(srv.SecurityGroupRules("sg-2app")) != before {
		t.Error("rules revoked on short evidence")
	}
	v := find(t, rep, "sg-2app", "ingress", "tcp", 9090, "10.0.0.0/16")
	if v.Verdict != VerdictUnused || !contains(v.Suggestion, "too short") {
		t.Errorf("%s: %s, want unused with a too-short warning", v.Verdict, v.Suggestion)
	}
}

// TestApplyEC2Errors: with EC2 failing, every planned revocation is
// reported failed with its error, and Apply returns an error.
func TestApplyEC2Errors(t *testing.T) {
	srv, inv := serveAccount(t)
	c := ec2.NewFromConfig(awstest.ClientConfig(srv.URL))
	rep := runAudit(t, inv, Options{})
	srv.SetUnavailable(true)
	out, err := Apply(context.Background(), c, rep, ApplyOptions{})
	if err == nil {
		t.Fatal("no error with EC2 unavailable")
	}
	for _, r := range out {
		if r.Outcome != "failed" || r.Error == "" {
			t.Errorf("%+v: want failed with the error", r)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
