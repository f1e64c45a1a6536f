package respond

import (
	"math"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90s", 90 * time.Second, true},
		{"4h", 4 * time.Hour, true},
		{"7d", 7 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"-1h", 0, false},
		{"d", 0, false},
		{"soon", 0, false},
		{"-1d", 0, false},
		{"-1d12h", 0, false},
		{"1d-1h", 0, false},
		{"99999999999d", 0, false}, // would overflow
		{"106752d", 0, false},      // past time.Duration's ~292 years
		{"106751d23h", 106751*24*time.Hour + 23*time.Hour, true},
		{"106751d24h", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
mode: enforce
aws_ip_ranges: ip-ranges.json
ban_time: 2h
ban_time_increment: {factor: 3, max: 2d}
nacl: {rule_range: [10, 20], max_entries: 40, evict: lowest-severity}
routes:
  - types: ["Recon:*"]
    block: [nacl]
    notify: [ops]
    repeat_interval: 1d
    publishing_frequency: FIFTEEN_MINUTES
`
	var c Config
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate([]string{"ops"}); err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.BanTime) != 2*time.Hour || time.Duration(c.Routes[0].RepeatInterval) != 24*time.Hour {
		t.Errorf("durations %v %v", c.BanTime, c.Routes[0].RepeatInterval)
	}
	// 2h, 6h, 18h, then the 2d cap.
	for n, want := range map[int]time.Duration{1: 2 * time.Hour, 2: 6 * time.Hour, 3: 18 * time.Hour, 4: 48 * time.Hour, 9: 48 * time.Hour} {
		if got := c.banTime(n); got != want {
			t.Errorf("ban %d: %v, want %v", n, got, want)
		}
	}
	if got := c.publishing(&c.Routes[0]); got != 15*time.Minute {
		t.Errorf("publishing %v", got)
	}
}

func TestConfigValidateErrors(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Mode: "on"}, "want dry-run or enforce"},
		{Config{Mode: ModeEnforce}, "aws_ip_ranges"},
		{Config{MinPrefixV4: 33}, "min_prefix_v4"},
		{Config{NACL: &NACLConfig{RuleRange: []int32{0, 10}}}, "rule_range"},
		{Config{NACL: &NACLConfig{MaxEntries: 41}}, "max_entries"},
		{Config{NACL: &NACLConfig{Evict: "random"}}, "evict"},
		{Config{NACL: &NACLConfig{NetworkACLs: []string{"sg-1"}}}, "not a network ACL id"},
		{Config{WAFv2: &WAFv2Config{Scope: "GLOBAL", IPv4Set: &IPSetRef{Name: "a", ID: "b"}}}, "scope"},
		{Config{WAFv2: &WAFv2Config{Scope: "REGIONAL"}}, "ipv4_set"},
		{Config{Routes: []Route{{Block: []string{"nacl"}}}}, "no such blocker"},
		{Config{Routes: []Route{{Notify: []string{"nobody"}}}}, "no notifier"},
		{Config{Routes: []Route{{Types: []string{"Recon:*/Port"}}}}, "prefix ending in *"},
		{Config{PublishingFrequency: "DAILY"}, "FIFTEEN_MINUTES"},
		{Config{MinSeverity: ptr(math.NaN())}, "min_severity NaN"},
		{Config{MinSeverity: ptr(math.Inf(1))}, "min_severity +Inf"},
		{Config{Routes: []Route{{MinSeverity: math.NaN()}}}, "min_severity NaN"},
		{Config{BanTimeIncrement: &BanIncrement{Factor: math.NaN()}}, "factor NaN"},
		{Config{BanTimeIncrement: &BanIncrement{Factor: math.Inf(1)}}, "factor +Inf"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate([]string{"ops"})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", tt.cfg, err, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestBackoffBounds(t *testing.T) {
	for _, rnd := range []float64{0, 0.999} {
		r := newRetrier(RetryConfig{Initial: Duration(100 * time.Millisecond), Max: Duration(time.Second)}, nil, func() float64 { return rnd })
		for n, step := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 30: time.Second} {
			d := r.backoff(n)
			if d < step/2 || d >= step {
				t.Errorf("rand %v attempt %d: %v outside [%v, %v)", rnd, n, d, step/2, step)
			}
		}
	}
}
