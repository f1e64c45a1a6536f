package config

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/internal/detect"
	"github.com/flowguard/flowguard/internal/finding"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGolden reads every testdata/configurations/NAME.yaml and compares
// the normalized configuration, after its warnings as comments, (or the
// error) with NAME.golden.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/configurations/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatal("no configurations", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			c, err := Parse(data, name+".yaml")
			if err != nil {
				got = "error: " + err.Error() + "\n"
			} else {
				b, err := c.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				for _, w := range c.Warnings() {
					got += "# warning: " + w.Error() + "\n"
				}
				got += string(b)
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestDefaultConfigValidates(t *testing.T) {
	c := DefaultConfig()
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b, "default")
	if err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
	b2, _ := back.Marshal()
	if string(b) != string(b2) {
		t.Errorf("the defaults do not round-trip:\n%s\n---\n%s", b, b2)
	}
	if _, err := detect.New(must(c.DetectOptions())); err != nil {
		t.Errorf("the engine rejects the defaults: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestErrorsPointAtTheKey checks that errors carry the line and column of
// the key they are about.
func TestErrorsPointAtTheKey(t *testing.T) {
	tests := []struct {
		yaml, want string
	}{
		{"detectors:\n  portscan:\n    min_port: 3\n", `x.yaml:3:5: detectors.portscan.min_port: unknown key "min_port" (did you mean "min_ports"?)`},
		{"detectors:\n  portscan:\n    min_ports: 1\n", `x.yaml:3:5: detectors.portscan.min_ports: 1 is too small (at least 2)`},
		{"expected_sources:\n  - ports: [22]\n", `x.yaml:2:5: expected_sources[0].sources: give at least one source address or CIDR block`},
		{"allowlist: [nope]\n", `x.yaml:1:13: allowlist[0]: "nope" is not an IP address or CIDR block`},
		{"server:\n  query_buffer: 2GiB\n", `x.yaml:2:3: server.query_buffer: 2147483648 bytes is out of range (1MiB to 1GiB)`},
		{"server:\n  query_buffer: 100\n", `x.yaml:2:3: server.query_buffer: 100 bytes is out of range (1MiB to 1GiB)`},
		{"server:\n  query_buffer: lots\n", `x.yaml:2:3: server.query_buffer: "lots" is not a size (use forms such as 64MiB, 1GiB, 500MB)`},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.yaml), "x.yaml")
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q:\n got %v\nwant %s", tt.yaml, err, tt.want)
		}
	}
}

// TestQueryBuffer: server.query_buffer reads sizes with units.
func TestQueryBuffer(t *testing.T) {
	for in, want := range map[string]ByteSize{"64MiB": 64 << 20, "1GiB": 1 << 30, "500MB": 500e6, "2097152": 2 << 20, "512 KiB": 512 << 10} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1MiB", "1.5GiB", "MiB", "12 parsecs"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q): no error", in)
		}
	}
	c, err := Parse([]byte("server:\n  query_buffer: 64MiB\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.QueryBuffer != 64<<20 {
		t.Errorf("query_buffer %d, want %d", c.Server.QueryBuffer, 64<<20)
	}
}

func TestThreatLists(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "flowguard.yaml")
	data, _ := os.ReadFile("testdata/bad-ips.txt")
	os.WriteFile(filepath.Join(dir, "bad-ips.txt"), data, 0o644)
	os.WriteFile(cfg, []byte("threat_lists: [bad-ips.txt]\n"), 0o644)
	c, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.1/32", "192.0.2.128/25", "2001:db8:bad::/48"}
	if len(c.Threats) != len(want) {
		t.Fatalf("threats %v, want %v", c.Threats, want)
	}
	for i, p := range c.Threats {
		if p.String() != want[i] {
			t.Errorf("entry %d: %s, want %s", i, p, want[i])
		}
	}
	_, err = ReadThreatList("testdata/broken-ips.txt")
	if err == nil || !strings.Contains(err.Error(), "broken-ips.txt:2:") {
		t.Errorf("bad entry: got %v, want an error at line 2", err)
	}
	os.WriteFile(cfg, []byte("allowlist: []\nthreat_lists: [bad-ips.txt, missing.txt]\n"), 0o644)
	if _, err := Load(cfg); err == nil || !strings.Contains(err.Error(), "flowguard.yaml:2:29: threat_lists[1]: cannot read threat list") {
		t.Errorf("a missing threat list: %v, want an error at its entry", err)
	}
}

func TestDetectOptions(t *testing.T) {
	c, err := Parse([]byte("allowlist: [203.0.113.0/24]\ntrusted_ips: [192.0.2.10]\nexpected_sources:\n  - ports: [22]\n    sources: [203.0.113.0/24]\n"), "x")
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.DetectOptions()
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Allow) != 2 || o.Allow[1] != netip.MustParsePrefix("192.0.2.10/32") {
		t.Errorf("allow %v: want the allow list and the trusted IPs", o.Allow)
	}
	if len(o.Expected) != 1 || o.Expected[0].Ports[0] != 22 {
		t.Errorf("expected %+v", o.Expected)
	}
	if len(o.Home) != 5 {
		t.Errorf("home %v: want the private ranges", o.Home)
	}
}

// TestResponseRoutesNameConfiguredNotifiers: a route that notifies a
// notifier the file does not configure is an error, with or without a
// notify: section.
func TestResponseRoutesNameConfiguredNotifiers(t *testing.T) {
	for _, text := range []string{
		"response:\n  routes:\n    - name: x\n      notify: [nobody]\n",
		"response:\n  routes:\n    - name: x\n      notify: [nobody]\nnotify:\n  slack:\n    - name: oncall\n      webhook_url: https://hooks.slack.com/services/T/B/X\n",
	} {
		path := filepath.Join(t.TempDir(), "flowguard.yaml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), `"nobody": no notifier of that name`) {
			t.Errorf("%q: err = %v", text, err)
		}
	}
}

// TestMappedAddressesAreCanonical: every address the configuration gives
// the detectors and guards (home networks, allow list, trusted IPs,
// expected sources, threat lists, suppression rules) is in canonical form,
// so ::ffff:10.0.0.9 is inside 10.0.0.0/16 and 10.0.0.9 inside
// ::ffff:10.0.0.0/112.
func TestMappedAddressesAreCanonical(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad-ips.txt"), []byte("::ffff:192.0.2.1\n::ffff:198.51.100.0/120 # a block\n"), 0o644)
	data, err := os.ReadFile("testdata/configurations/mapped.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "flowguard.yaml")
	os.WriteFile(cfg, append(data, "threat_lists: [bad-ips.txt]\n"...), 0o644)
	c, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.DetectOptions()
	if err != nil {
		t.Fatal(err)
	}
	str := func(ps []netip.Prefix) string { return fmt.Sprint(ps) }
	for _, tc := range []struct{ name, got, want string }{
		{"home", str(o.Home), "[10.0.0.0/16 2600:1f18:abc::/56]"},
		{"allow and trusted", str(o.Allow), "[203.0.113.7/32 198.51.100.0/24 192.0.2.10/32]"},
		{"expected sources", str(o.Expected[0].Sources), "[192.0.2.0/24]"},
		{"threats", str(o.Threats), "[192.0.2.1/32 198.51.100.0/24]"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, tc.got, tc.want)
		}
	}
	policy, err := c.Config.Policy()
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"198.51.100.5", "::ffff:198.51.100.5"} {
		f := finding.Finding{Type: "Recon:EC2/Portscan", Actor: finding.Actor{IP: netip.MustParseAddr(ip)}}
		if _, ok := policy.Suppressing(&f); !ok {
			t.Errorf("%s: not suppressed by a rule for ::ffff:198.51.100.0/124", ip)
		}
	}
	if !policy.Trusted.Contains(netip.MustParseAddr("192.0.2.10")) {
		t.Error("192.0.2.10 not trusted by ::ffff:192.0.2.10")
	}
}
