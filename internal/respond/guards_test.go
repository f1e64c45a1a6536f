package respond

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/store"
)

// permissive are every knob turned as far towards blocking as the
// configuration allows.
var permissive = map[string]func(*Config){
	"defaults": func(*Config) {},
	"min_prefix": func(c *Config) {
		c.MinPrefixV4, c.MinPrefixV6 = 1, 1
	},
	"no_rate_limit":   func(c *Config) { c.MaxBlocksPerHour = 1 << 30 },
	"min_severity_0":  func(c *Config) { z := 0.0; c.MinSeverity = &z },
	"kill_switch_off": func(c *Config) { c.KillSwitch = false; c.KillSwitchFile = "" },
	"named_acl_and_wafv2": func(c *Config) {
		c.WAFv2 = &WAFv2Config{Scope: "REGIONAL", IPv4Set: &IPSetRef{Name: "flowguard-v4"}, IPv6Set: &IPSetRef{Name: "flowguard-v6"}}
		c.Routes[0].Block = []string{NACLName, WAFv2Name}
	},
	"everything": func(c *Config) {
		z := 0.0
		c.MinSeverity = &z
		c.MinPrefixV4, c.MinPrefixV6 = 1, 1
		c.MaxBlocksPerHour = 1 << 30
		c.NACL.MaxEntries = 40
		c.NACL.RuleRange = []int32{1, 32766}
		c.NACL.Evict = EvictLowestSeverity
		c.BanTime = Duration(30 * 24 * time.Hour)
		c.WAFv2 = &WAFv2Config{Scope: "REGIONAL", IPv4Set: &IPSetRef{Name: "flowguard-v4"}, IPv6Set: &IPSetRef{Name: "flowguard-v6"}}
		c.Routes = []Route{{Types: []string{"*"}, Block: []string{NACLName, WAFv2Name}, Notify: []string{"rec"}}}
	},
}

// TestNeverBlockProtected tries to make flowguard block allow-listed,
// home, private, reserved and AWS-service addresses, through every knob,
// and checks that nothing reaches AWS and every refusal is audited.
func TestNeverBlockProtected(t *testing.T) {
	protected := []struct {
		ip, guard string
	}{
		{"203.0.113.7", GuardAllowlist},
		{"::ffff:203.0.113.7", GuardAllowlist}, // IPv4-mapped form of the same address
		{"10.0.1.10", GuardHome},
		{"2600:1f18:abc:12::5", GuardHome},
		{"172.16.5.5", GuardHome},
		{"192.168.1.1", GuardHome},
		{"100.64.0.1", GuardHome},
		{"fd00::1", GuardHome},
		{"13.32.1.1", GuardAWS},      // CLOUDFRONT in the fixture
		{"54.231.200.9", GuardAWS},   // S3
		{"15.177.10.10", GuardAWS},   // ROUTE53_HEALTHCHECKS
		{"2600:9000:2::1", GuardAWS}, // CLOUDFRONT IPv6
		{"127.0.0.1", GuardReserved},
		{"169.254.169.254", GuardReserved},
		{"0.0.0.0", GuardReserved},
		{"224.0.0.5", GuardReserved},
		{"255.255.255.255", GuardReserved},
		{"::1", GuardReserved},
		{"fe80::1", GuardReserved},
	}
	for name, knob := range permissive {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			knob(e.cfg)
			if e.cfg.WAFv2 != nil {
				e.cfg.WAFv2.IPv4Set.ID, e.cfg.WAFv2.IPv6Set.ID = e.wafV4, e.wafV6
			}
			if err := e.cfg.Validate([]string{"rec"}); err != nil {
				t.Fatal(err)
			}
			e.restart()
			for _, p := range protected {
				f := attack(p.ip, 8.9, e.clock.Now())
				rep := e.handle(ev(f))
				if rep.Count(OutcomeBlocked) != 0 || rep.Count(OutcomeRefused) != 1 {
					t.Errorf("%s: outcomes %+v, want one refusal", p.ip, rep.Outcomes)
					continue
				}
				if g := rep.Outcomes[0].Guard; g != p.guard {
					t.Errorf("%s: refused by %s, want %s", p.ip, g, p.guard)
				}
				as, err := e.st.ListAudit(t.Context(), store.AuditFilter{FindingID: f.ID, Action: AuditRefused})
				if err != nil || len(as) != 1 {
					t.Errorf("%s: refusal audit %+v %v", p.ip, as, err)
				}
			}
			if n := e.ec2.Calls("CreateNetworkAclEntry"); n != 0 || len(e.denies()) != 0 {
				t.Errorf("CreateNetworkAclEntry called %d times; entries %+v", n, e.denies())
			}
			if n := e.waf.Calls("UpdateIPSet"); n != 0 {
				t.Errorf("UpdateIPSet called %d times", n)
			}
			if rows := e.blocks(store.BlockFilter{}); len(rows) != 0 {
				t.Errorf("store has blocks %+v", rows)
			}
		})
	}
}

func TestCheckPrefix(t *testing.T) {
	aws, err := LoadAWSRanges(filepath.Join("testdata", "ip-ranges.json"))
	if err != nil {
		t.Fatal(err)
	}
	loose := &Config{Mode: ModeEnforce, MinPrefixV4: 1, MinPrefixV6: 1}
	strict := &Config{Mode: ModeEnforce}
	tests := []struct {
		cfg    *Config
		prefix string
		guard  string // "" = allowed
	}{
		{strict, "198.51.100.23/32", ""},
		{strict, "198.51.100.0/24", ""},
		{strict, "198.51.100.0/23", GuardPrefix},
		{strict, "2001:db8:1::/64", ""},
		{strict, "2001:db8::/63", GuardPrefix},
		{loose, "0.0.0.0/0", GuardPrefix},
		{loose, "::/0", GuardPrefix},
		{loose, "198.0.0.0/8", ""},
		{loose, "203.0.0.0/16", GuardAllowlist}, // contains the allow-list
		{loose, "10.0.0.0/8", GuardHome},        // contains the home network
		{loose, "13.0.0.0/8", GuardAWS},         // contains CloudFront
		{loose, "3.5.141.0/24", GuardAWS},       // inside an AMAZON /22
		{loose, "52.0.0.0/8", GuardAWS},         // holds an AMAZON /22
		{loose, "128.0.0.0/1", GuardReserved},   // holds 169.254/16 (checked before AWS's)
		{loose, "2a05:d07a::/32", GuardAWS},     // contains an S3 /40
		{loose, "2600:1f18::/32", GuardHome},
	}
	for _, tt := range tests {
		g, err := NewGuards(tt.cfg, testHome, testAllow, aws)
		if err != nil {
			t.Fatal(err)
		}
		r := g.CheckPrefix(mustPrefix(tt.prefix))
		got := ""
		if r != nil {
			got = r.Guard
		}
		if got != tt.guard {
			t.Errorf("%s (min /%d): guard %q (%v), want %q", tt.prefix, tt.cfg.MinPrefixV4, got, r, tt.guard)
		}
	}
}

func TestEnforceNeedsAWSRanges(t *testing.T) {
	if _, err := NewGuards(&Config{Mode: ModeEnforce}, nil, nil, nil); err == nil {
		t.Error("enforce without AWS ranges accepted by NewGuards")
	}
	if err := (&Config{Mode: ModeEnforce}).Validate(nil); err == nil {
		t.Error("enforce without aws_ip_ranges accepted by Validate")
	}
	if _, err := ParseAWSRanges([]byte(`{"syncToken":"1","prefixes":[],"ipv6_prefixes":[]}`)); err == nil {
		t.Error("an empty ip-ranges.json accepted")
	}
	if _, err := ParseAWSRanges([]byte(`{"prefixes":[{"ip_prefix":"not a cidr"}]}`)); err == nil {
		t.Error("a bad prefix accepted")
	}
}

func TestKillSwitch(t *testing.T) {
	stop := filepath.Join(t.TempDir(), "STOP")
	for _, tc := range []struct {
		name string
		set  func(*Config)
		arm  func()
	}{
		{"flag", func(c *Config) { c.KillSwitch = true }, func() {}},
		{"file", func(c *Config) { c.KillSwitchFile = stop }, func() { os.WriteFile(stop, nil, 0o600) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(stop)
			e := newEnv(t, tc.set)
			tc.arm()
			rep := e.handle(ev(attack("198.51.100.23", 8.9, t0)))
			if rep.Count(OutcomeRefused) != 1 || rep.Outcomes[0].Guard != GuardKillSwitch || len(e.denies()) != 0 {
				t.Fatalf("outcomes %+v entries %+v", rep.Outcomes, e.denies())
			}
			if tc.name == "file" {
				os.Remove(stop)
				rep = e.handle(ev(attack("198.51.100.23", 8.9, t0.Add(time.Minute))))
				if rep.Count(OutcomeBlocked) != 1 {
					t.Fatalf("after removing the file: %+v", rep.Outcomes)
				}
			}
		})
	}
}

func TestSeverityRateAndDryRun(t *testing.T) {
	t.Run("severity", func(t *testing.T) {
		e := newEnv(t, nil)
		rep := e.handle(ev(attack("198.51.100.23", 6.9, t0)))
		if rep.Count(OutcomeRefused) != 1 || rep.Outcomes[0].Guard != GuardSeverity {
			t.Fatalf("%+v", rep.Outcomes)
		}
	})
	t.Run("rate", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.MaxBlocksPerHour = 2 })
		var guards []string
		for i, ip := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
			e.clock.Set(t0.Add(time.Duration(i) * time.Minute))
			rep := e.handle(ev(attack(ip, 8, e.clock.Now())))
			guards = append(guards, rep.Outcomes[0].Kind+"/"+rep.Outcomes[0].Guard)
		}
		want := []string{"blocked/", "blocked/", "refused/" + GuardRate}
		for i := range want {
			if guards[i] != want[i] {
				t.Fatalf("outcomes %v, want %v", guards, want)
			}
		}
		// Over an hour after the first ban, there is room again.
		e.clock.Set(t0.Add(time.Hour + time.Second))
		rep := e.handle(ev(attack("198.51.100.3", 8, e.clock.Now())))
		if rep.Count(OutcomeBlocked) != 1 {
			t.Fatalf("after an hour: %+v", rep.Outcomes)
		}
	})
	t.Run("dry-run", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Mode = ModeDryRun })
		f := attack("198.51.100.23", 8, t0)
		rep := e.handle(ev(f))
		if rep.Count(OutcomeWould) != 1 || e.ec2.Calls("CreateNetworkAclEntry") != 0 || len(e.blocks(store.BlockFilter{})) != 0 {
			t.Fatalf("%+v", rep.Outcomes)
		}
		e.handle(ev(f)) // the same logs again: no second "would block"
		if n := len(e.audit(AuditWouldBlock)); n != 1 {
			t.Errorf("%d would-block audit entries, want 1", n)
		}
		if e.rec.count() != 1 {
			t.Errorf("%d notifications, want 1 (dry-run still notifies)", e.rec.count())
		}
	})
}
