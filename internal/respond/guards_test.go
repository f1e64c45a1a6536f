package respond

import (
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
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
		{"::ffff:10.0.0.9", GuardHome},
		{"64:ff9b::a00:1", GuardHome},                            // NAT64 of 10.0.0.1
		{"64:ff9b::cb00:7107", GuardAllowlist},                   // NAT64 of 203.0.113.7
		{"64:ff9b::d20:101", GuardAWS},                           // NAT64 of 13.32.1.1
		{"::a00:1", GuardHome},                                   // IPv4-compatible 10.0.0.1
		{"2002:cb00:7107::1", GuardAllowlist},                    // 6to4 of 203.0.113.7
		{"2001:0:4136:e378:8000:63bf:34ff:8ef8", GuardAllowlist}, // Teredo client 203.0.113.7
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

// prefixCase is a prefix and the guard that refuses it under cfg ("":
// none, the prefix may be blocked).
type prefixCase struct {
	cfg    *Config
	prefix string
	guard  string
}

// checkPrefixes checks each case with guards over the test's home
// networks, allow-list and testdata/ip-ranges.json.
func checkPrefixes(t *testing.T, tests []prefixCase) {
	t.Helper()
	aws, err := LoadAWSRanges(filepath.Join("testdata", "ip-ranges.json"))
	if err != nil {
		t.Fatal(err)
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

func TestCheckPrefix(t *testing.T) {
	loose := &Config{Mode: ModeEnforce, MinPrefixV4: 1, MinPrefixV6: 1}
	strict := &Config{Mode: ModeEnforce}
	checkPrefixes(t, []prefixCase{
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
	})
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

// TestCheckPrefixEmbeddedIPv4 tries to block IPv6 addresses and prefixes
// that stand for protected IPv4 addresses (IPv4-mapped, NAT64,
// IPv4-compatible, 6to4, Teredo): the guards judge the IPv4 address
// inside, so blocking the IPv6 form cannot cut off a home, private,
// allow-listed or AWS address.
func TestCheckPrefixEmbeddedIPv4(t *testing.T) {
	loose := &Config{Mode: ModeEnforce, MinPrefixV4: 1, MinPrefixV6: 1}
	strict := &Config{Mode: ModeEnforce}
	checkPrefixes(t, []prefixCase{
		// IPv4-mapped: the address itself.
		{strict, "::ffff:10.0.0.9/128", GuardHome},
		{strict, "::ffff:203.0.113.7/128", GuardAllowlist},
		{strict, "::ffff:198.51.100.23/128", ""},
		{loose, "::ffff:203.0.113.0/120", GuardAllowlist},
		// NAT64, well-known prefix (RFC 6052).
		{strict, "64:ff9b::a00:1/128", GuardHome},          // 10.0.0.1, home
		{strict, "64:ff9b::c0a8:101/128", GuardHome},       // 192.168.1.1, private
		{strict, "64:ff9b::cb00:7107/128", GuardAllowlist}, // 203.0.113.7
		{strict, "64:ff9b::d20:101/128", GuardAWS},         // 13.32.1.1, CloudFront
		{strict, "64:ff9b::c633:6417/128", ""},             // 198.51.100.23
		{strict, "64:ff9b::c633:6400/120", ""},             // 198.51.100.0/24
		{strict, "64:ff9b::c633:0/112", GuardPrefix},       // 198.51.0.0/16: wider than /24
		{loose, "64:ff9b::a00:0/104", GuardHome},           // 10.0.0.0/8
		{loose, "64:ff9b::cb00:0/104", GuardAllowlist},     // 203.0.0.0/8
		{loose, "64:ff9b::/96", GuardPrefix},               // every IPv4 address
		{loose, "64:ff9b::/64", GuardPrefix},
		// NAT64, local-use prefix (RFC 8215), every RFC 6052 length.
		{strict, "64:ff9b:1::a00:1/128", GuardHome},           // /96 reading
		{strict, "64:ff9b:1:a00:0:100::/128", GuardHome},      // /48 reading: 10.0.0.1
		{strict, "64:ff9b:1:cb:0:7107::/128", GuardAllowlist}, // /56 reading: 203.0.113.7
		// IPv4-compatible (::/96, deprecated).
		{strict, "::a00:1/128", GuardHome},
		{strict, "::cb00:7107/128", GuardAllowlist},
		{loose, "::a00:0/104", GuardHome},
		// 6to4 (RFC 3056).
		{strict, "2002:a00:1::1/128", GuardHome},
		{strict, "2002:cb00:7107:1::/64", GuardAllowlist},
		{strict, "2002:d20:101::1/128", GuardAWS},
		{strict, "2002:c633:6417::1/128", ""},
		{loose, "2002:cb00::/24", GuardAllowlist}, // holds 203.0.113.0/24
		{loose, "2002:c633:6400::/40", ""},        // 198.51.100.0/24
		{loose, "2002::/16", GuardPrefix},
		// Teredo (RFC 4380): the client address, inverted, in the last 32 bits.
		{strict, "2001:0:4136:e378:8000:63bf:34ff:8ef8/128", GuardAllowlist}, // 203.0.113.7
		{strict, "2001:0:4136:e378:8000:63bf:f5ff:fffe/128", GuardHome},      // 10.0.0.1
		{strict, "2001:0:4136:e378:8000:63bf:39cc:9be8/128", ""},             // 198.51.100.23
		{loose, "2001:0:4136:e378::/64", GuardPrefix},                        // every client behind one server
		// Ordinary IPv6 embeds nothing.
		{strict, "2001:db8::a00:1/128", ""},
	})
}

// TestGuardsUnmapConfiguredRanges: home networks and allow-list entries
// written in IPv4-mapped form protect the IPv4 addresses they hold.
func TestGuardsUnmapConfiguredRanges(t *testing.T) {
	home := []netip.Prefix{mustPrefix("::ffff:10.1.0.0/112")}
	allow := []netip.Prefix{mustPrefix("::ffff:198.51.100.0/120"), mustPrefix("::ffff:192.0.2.9/128")}
	g, err := NewGuards(&Config{}, home, allow, nil)
	if err != nil {
		t.Fatal(err)
	}
	for prefix, want := range map[string]string{
		"10.1.2.3/32":            GuardHome,
		"::ffff:10.1.2.3/128":    GuardHome,
		"198.51.100.23/32":       GuardAllowlist,
		"64:ff9b::c633:6417/128": GuardAllowlist,
		"192.0.2.9/32":           GuardAllowlist,
		"192.0.2.10/32":          "",
	} {
		got := ""
		if r := g.CheckPrefix(mustPrefix(prefix)); r != nil {
			got = r.Guard
		}
		if got != want {
			t.Errorf("%s: guard %q, want %q", prefix, got, want)
		}
	}
}

// TestSeverityGuardNaN: a severity that is not a number never passes the
// min-severity guard, and a NaN min_severity is refused.
func TestSeverityGuardNaN(t *testing.T) {
	g, err := NewGuards(&Config{Mode: ModeEnforce}, testHome, testAllow, mustRanges(t))
	if err != nil {
		t.Fatal(err)
	}
	f := attack("198.51.100.23", math.NaN(), t0)
	if r := g.Check(f, ActorPrefix(f), 0); r == nil || r.Guard != GuardSeverity {
		t.Errorf("NaN severity: %v, want a %s refusal", r, GuardSeverity)
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := NewGuards(&Config{MinSeverity: &v}, nil, nil, nil); err == nil {
			t.Errorf("min_severity %v accepted by NewGuards", v)
		}
		if err := (&Config{MinSeverity: &v}).Validate(nil); err == nil {
			t.Errorf("min_severity %v accepted by Validate", v)
		}
	}
}

func mustRanges(t *testing.T) *AWSRanges {
	t.Helper()
	aws, err := LoadAWSRanges(filepath.Join("testdata", "ip-ranges.json"))
	if err != nil {
		t.Fatal(err)
	}
	return aws
}

// TestParseAWSRangesRefusesPartialFiles: a file that would leave a family
// of addresses without AWS protection is refused, with a reason.
func TestParseAWSRangesRefusesPartialFiles(t *testing.T) {
	const v4 = `{"ip_prefix":"52.94.76.0/22","region":"us-west-2","service":"AMAZON"}`
	const v6 = `{"ipv6_prefix":"2600:9000::/28","region":"GLOBAL","service":"CLOUDFRONT"}`
	tests := []struct {
		name, json, want string // want "" = accepted
	}{
		{"both", `{"syncToken":"1","prefixes":[` + v4 + `],"ipv6_prefixes":[` + v6 + `]}`, ""},
		{"ipv6 only", `{"syncToken":"1","prefixes":[],"ipv6_prefixes":[` + v6 + `]}`, "no IPv4 prefixes"},
		{"ipv4 only", `{"syncToken":"1","prefixes":[` + v4 + `],"ipv6_prefixes":[]}`, "no IPv6 prefixes"},
		{"ipv6 key missing", `{"syncToken":"1","prefixes":[` + v4 + `]}`, "no IPv6 prefixes"},
		{"empty", `{}`, "no IPv4 prefixes"},
		{"garbage", "<html>502 Bad Gateway</html>", "not AWS's ip-ranges.json"},
		{"truncated", `{"syncToken":"1","prefixes":[` + v4, "not AWS's ip-ranges.json"},
		{"not an object", `[1, 2]`, "not AWS's ip-ranges.json"},
		{"ipv6 in the ipv4 list", `{"prefixes":[{"ip_prefix":"2600:9000::/28"}],"ipv6_prefixes":[` + v6 + `]}`, "not an IPv4 CIDR block"},
	}
	for _, tt := range tests {
		_, err := ParseAWSRanges([]byte(tt.json))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
	if _, err := LoadAWSRanges(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "cannot read AWS's IP ranges") {
		t.Errorf("missing file: %v", err)
	}
}
