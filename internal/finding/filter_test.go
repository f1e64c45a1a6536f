package finding

import (
	"net/netip"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestFilterMatch(t *testing.T) {
	f := mk("Recon:EC2/Portscan", "198.51.100.5", "10.0.1.10", 5)
	f.LastSeen = t0
	arch := f
	arch.Archived = true
	for _, tc := range []struct {
		name string
		fl   Filter
		f    Finding
		want bool
	}{
		{"zero filter, current", Filter{}, f, true},
		{"zero filter hides archived", Filter{}, arch, false},
		{"archived only", Filter{Archived: ArchivedOnly}, arch, true},
		{"archived only, current", Filter{Archived: ArchivedOnly}, f, false},
		{"all", Filter{Archived: AnyArchived}, arch, true},
		{"type exact", Filter{Types: []string{"Recon:EC2/Portscan"}}, f, true},
		{"type prefix", Filter{Types: []string{"Recon:*"}}, f, true},
		{"type other", Filter{Types: []string{"Impact:*"}}, f, false},
		{"min severity equal", Filter{MinSeverity: 5}, f, true},
		{"min severity above", Filter{MinSeverity: 5.1}, f, false},
		{"actor", Filter{Actors: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}, f, true},
		{"actor miss", Filter{Actors: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, f, false},
		{"since equal", Filter{Since: t0}, f, true},
		{"since later", Filter{Since: t0.Add(time.Second)}, f, false},
	} {
		if got := tc.fl.Match(&tc.f); got != tc.want {
			t.Errorf("%s: Match = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseSeverityAndArchived(t *testing.T) {
	for in, want := range map[string]float64{"low": 1, "Medium": 4, "HIGH": 7, "6.5": 6.5, "0": 0} {
		if got, err := ParseSeverity(in); err != nil || got != want {
			t.Errorf("ParseSeverity(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"11", "-1", "severe", ""} {
		if _, err := ParseSeverity(bad); err == nil {
			t.Errorf("ParseSeverity(%q): no error", bad)
		}
	}
	for in, want := range map[string]ArchivedFilter{"no": CurrentOnly, "yes": ArchivedOnly, "all": AnyArchived, "true": ArchivedOnly} {
		if got, err := ParseArchivedFilter(in); err != nil || got != want {
			t.Errorf("ParseArchivedFilter(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseArchivedFilter("maybe"); err == nil {
		t.Error("ParseArchivedFilter(maybe): no error")
	}
}

func TestConfigYAML(t *testing.T) {
	// The config loader embeds Config inline; check the keys it reads.
	var top struct {
		HomeNetworks []string `yaml:"home_networks"`
		Config       `yaml:",inline"`
	}
	src := `
home_networks: [10.0.0.0/16]
suppression_rules:
  - name: vendor-scanner
    description: contracted scanner
    types: ["Recon:*"]
    actors: [198.51.100.0/28]
    ports: [22, 443]
  - name: quiet
    severity_below: 3
trusted_ips: [203.0.113.7, 192.0.2.0/24]
`
	if err := yaml.Unmarshal([]byte(src), &top); err != nil {
		t.Fatal(err)
	}
	if err := top.Validate(); err != nil {
		t.Fatal(err)
	}
	r := top.SuppressionRules[0]
	if r.Name != "vendor-scanner" || r.Types[0] != "Recon:*" || r.Actors[0] != "198.51.100.0/28" || len(r.Ports) != 2 || r.Ports[1] != 443 {
		t.Errorf("rule 0 = %+v", r)
	}
	if top.SuppressionRules[1].SeverityBelow != 3 || len(top.TrustedIPs) != 2 {
		t.Errorf("config = %+v", top.Config)
	}
	p, err := top.Policy()
	if err != nil {
		t.Fatal(err)
	}
	if !p.Trusted.Contains(netip.MustParseAddr("192.0.2.44")) || p.Trusted.Contains(netip.MustParseAddr("192.0.3.1")) {
		t.Error("trusted list does not match its CIDR")
	}
	bad := Config{TrustedIPs: []string{"192.0.2.0/24", "nope"}}
	if err := bad.Validate(); err == nil {
		t.Error("invalid trusted IP accepted")
	}
}
