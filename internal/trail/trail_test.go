package trail

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/internal/cloudtrail"
	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/flowlog"
)

func TestOptionsSignInSourcesFromPort443(t *testing.T) {
	c := config.DefaultConfig()
	net := func(s string) config.Network { return config.Network{Prefix: netip.MustParsePrefix(s)} }
	c.ExpectedSources = []config.ExpectedSource{
		{Ports: []uint16{22}, Sources: []config.Network{net("198.51.100.0/24")}},
		{Ports: []uint16{80, 443}, Sources: []config.Network{net("203.0.113.0/24")}},
	}
	c.Allowlist = []config.Network{net("192.0.2.0/24")}
	o := Options(&c)
	if !slices.Equal(o.SignInSources, []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}) {
		t.Errorf("sign-in sources %v", o.SignInSources)
	}
	if len(o.Allow) != 1 || len(o.Home) == 0 {
		t.Errorf("allow %v home %v", o.Allow, o.Home)
	}
}

func TestReaderSplitsCloudTrailAndGuardDuty(t *testing.T) {
	d := cloudtrail.New(cloudtrail.Options{})
	var gd []finding.Finding
	sk := &flowlog.Skipped{Keep: 5}
	r := Reader(d, sk, func(f finding.Finding) { gd = append(gd, f) })
	doc := `{"eventVersion":"1.08","eventTime":"2026-11-22T10:00:00Z","eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","sourceIPAddress":"203.0.113.1","userIdentity":{"type":"IAMUser","userName":"u"},"requestParameters":{"name":"t"}}
{"detail-type":"GuardDuty Finding","detail":{"id":"16afba5c5c43e07c9e3e5e2e544e95df","type":"Recon:EC2/Portscan","severity":5,"service":{"detectorId":"d"}}}
{"detail-type":"GuardDuty Finding","detail":{"type":"no id"}}
`
	if err := r.Read("mixed.json", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	if d.Records() != 1 || len(gd) != 1 || gd[0].Type != "Recon:EC2/Portscan" {
		t.Errorf("records %d, GuardDuty %v", d.Records(), gd)
	}
	if errs := sk.First(); len(errs) != 1 || errs[0].Line != 3 {
		t.Errorf("skipped %v", errs)
	}
}

// TestCloudTrailSettingsReachTheRules: the cloudtrail: section's thresholds
// decide. Six failed sign-ins in 20 minutes from one address are brute
// force with min_failures 5 and window 30m, not with the defaults (10 in
// 10 minutes); port 5432 opened to the world is a finding only when it is
// a sensitive port, and 22 is not once the list leaves it out.
func TestCloudTrailSettingsReachTheRules(t *testing.T) {
	var evs []string
	for i := range 6 {
		evs = append(evs, fmt.Sprintf(`{"eventVersion":"1.08","eventTime":"2026-11-22T10:%02d:00Z","eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","sourceIPAddress":"198.51.100.23","userIdentity":{"type":"IAMUser","userName":"JohnDoe"},"responseElements":{"ConsoleLogin":"Failure"},"errorMessage":"Failed authentication"}`, i*4))
	}
	evs = append(evs, `{"eventVersion":"1.08","eventTime":"2026-11-22T11:00:00Z","eventName":"AuthorizeSecurityGroupIngress","eventSource":"ec2.amazonaws.com","sourceIPAddress":"203.0.113.5","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/ops"},"requestParameters":{"groupId":"sg-1","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":22,"toPort":22,"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]}},{"ipProtocol":"tcp","fromPort":5432,"toPort":5432,"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]}}]}}}`)
	doc := []byte(strings.Join(evs, "\n"))
	run := func(yml string) map[string]finding.Finding {
		t.Helper()
		cfg, err := config.Parse([]byte(yml), "flowguard.yaml")
		if err != nil {
			t.Fatal(err)
		}
		d := cloudtrail.New(Options(cfg))
		if err := Reader(d, nil, nil).Read("t.json", doc); err != nil {
			t.Fatal(err)
		}
		out := map[string]finding.Finding{}
		for _, f := range d.Findings() {
			out[f.Type] = f
		}
		return out
	}
	def := run("")
	if _, ok := def[cloudtrail.TypeBruteForceSource]; ok {
		t.Error("brute force with the defaults (6 failures in 20 minutes)")
	}
	if sg := def[cloudtrail.TypeSecurityGroupOpen]; !slices.Equal(sg.Target.Ports, []uint16{22, 5432}) {
		t.Errorf("defaults: security group finding ports %v", sg.Target.Ports)
	}
	set := run("cloudtrail:\n  brute_force: {window: 30m, min_failures: 5}\n  sensitive_ports: [5432]\n")
	if bf, ok := set[cloudtrail.TypeBruteForceSource]; !ok || bf.Count != 6 || bf.Evidence["threshold"] != 5 || bf.Evidence["window"] != "30m0s" {
		t.Errorf("brute force with min_failures 5, window 30m: %+v", bf)
	}
	if sg := set[cloudtrail.TypeSecurityGroupOpen]; !slices.Equal(sg.Target.Ports, []uint16{5432}) {
		t.Errorf("sensitive_ports [5432]: security group finding ports %v", sg.Target.Ports)
	}
}
