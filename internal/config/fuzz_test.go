package config

import "testing"

// FuzzParse feeds arbitrary YAML to the configuration parser: an error
// with a position is fine, a panic is not.
func FuzzParse(f *testing.F) {
	f.Add([]byte("home_networks: [10.0.0.0/16]\nallowlist: [203.0.113.0/24]\nexpected_sources:\n  - ports: [22]\n    sources: [203.0.113.0/24]\n"))
	f.Add([]byte("detectors:\n  repeated_reject:\n    min_rejects: 2\n"))
	f.Add([]byte("suppression_rules:\n  - name: x\n    types: ['Recon:*']\n"))
	f.Add([]byte("alarms:\n  metric_filters: []\n"))
	f.Add([]byte("detectors:\n  portscan: &p\n    min_ports: 20\n  repeated_reject: *p\n"))
	f.Add([]byte("expected_sources:\n  - &e {ports: [22], sources: [10.0.0.1]}\n  - <<: *e\n    ports: [0]\n"))
	f.Add([]byte("threat_lists: &t [a, *t]\n"))
	f.Add([]byte("response:\n  min_severity: .nan\n  nacl: {rule_range: [1, 200]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if err == nil && c == nil {
			t.Fatal("no config and no error")
		}
	})
}
