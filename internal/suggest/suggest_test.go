package suggest

import "testing"

func TestClosest(t *testing.T) {
	names := []string{"srcaddr", "dstaddr", "srcport", "logStatus", "home_networks", "allowlist"}
	for _, c := range []struct{ in, want string }{
		{"srcaddress", "srcaddr"},
		{"SrcAdr", "srcaddr"},
		{"logstats", "logStatus"},
		{"home_network", "home_networks"},
		{"allowlst", "allowlist"},
		{"bytes", ""},
		{"x", ""},
	} {
		if got := Closest(c.in, names); got != c.want {
			t.Errorf("Closest(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
