package trail

import (
	"net/netip"
	"slices"
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
