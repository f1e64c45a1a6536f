package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckResponse: config check reads what --respond will read
// (AWS's IP ranges) and refuses what would turn a guard off, at the line
// and column of the key; it warns, without failing, about a rule range
// that reaches a default network ACL's allow rule.
func TestConfigCheckResponse(t *testing.T) {
	const both = `{"syncToken":"1","createDate":"2026-11-20-00-00-00","prefixes":[{"ip_prefix":"52.94.76.0/22","region":"us-west-2","service":"AMAZON"}],"ipv6_prefixes":[{"ipv6_prefix":"2600:9000::/28","region":"GLOBAL","service":"CLOUDFRONT"}]}`
	const v6only = `{"syncToken":"1","prefixes":[],"ipv6_prefixes":[{"ipv6_prefix":"2600:9000::/28","region":"GLOBAL","service":"CLOUDFRONT"}]}`
	tests := []struct {
		name, ranges, response string
		code                   int
		stdout, stderr         string // parts expected
	}{
		{"good ranges", both, "  mode: enforce\n  aws_ip_ranges: ip-ranges.json\n", 0,
			"AWS IP ranges: 1 IPv4 and 1 IPv6 prefix(es) of 2026-11-20-00-00-00", ""},
		{"missing ranges", "", "  mode: enforce\n  aws_ip_ranges: ip-ranges.json\n", 1,
			"", "flowguard.yaml:3:3: response.aws_ip_ranges: cannot read AWS's IP ranges"},
		{"garbage ranges", "<html>502</html>", "  aws_ip_ranges: ip-ranges.json\n", 1,
			"", "flowguard.yaml:2:3: response.aws_ip_ranges: " + "%DIR%/ip-ranges.json: not AWS's ip-ranges.json"},
		{"IPv6 only", v6only, "  mode: enforce\n  aws_ip_ranges: ip-ranges.json\n", 1,
			"", "flowguard.yaml:3:3: response.aws_ip_ranges: %DIR%/ip-ranges.json: no IPv4 prefixes"},
		{"NaN severity", "", "  min_severity: .nan\n", 1,
			"", "flowguard.yaml:2:3: response.min_severity: .nan is not a number: want a finite number"},
		{"rule range over 100", "", "  nacl:\n    rule_range: [1, 200]\n", 0,
			"ok with 1 warning(s)", "warning: %DIR%/flowguard.yaml:3:5: response.nacl.rule_range: [1, 200] holds rules 100 and 101"},
		{"bad value placed", "", "  nacl:\n    max_entries: 99\n", 1,
			"", "flowguard.yaml:3:5: response.nacl.max_entries 99: want 2 to 40"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.ranges != "" {
				os.WriteFile(filepath.Join(dir, "ip-ranges.json"), []byte(tt.ranges), 0o644)
			}
			cfg := writeConfig(t, dir, "response:\n"+tt.response)
			out, stderr, code := execute(t, "", "config", "check", cfg)
			want := func(s string) string { return strings.ReplaceAll(s, "%DIR%", dir) }
			if code != tt.code || !strings.Contains(out, want(tt.stdout)) || !strings.Contains(stderr, want(tt.stderr)) {
				t.Errorf("exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", code, tt.code, out, want(tt.stdout), stderr, want(tt.stderr))
			}
		})
	}
}
