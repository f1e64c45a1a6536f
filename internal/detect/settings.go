package detect

import (
	"errors"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written in configuration files as Go writes
// durations ("5m", "1h30m").
type Duration time.Duration

// UnmarshalYAML reads a duration string such as "15m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: a duration such as 5m or 1h: %w", n.Line, err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (use forms such as 90s, 5m, 1h)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String formats the duration without trailing zero units ("5m", not "5m0s").
func (d Duration) String() string {
	s := time.Duration(d).String()
	for _, suf := range []string{"m0s", "h0m"} {
		if len(s) > len(suf) && s[len(s)-len(suf):] == suf {
			s = s[:len(s)-len(suf)+1]
		}
	}
	return s
}

// Settings are the detectors' knobs: the `detectors:` section of the
// configuration file. Zero values are not defaults; start from
// DefaultSettings. docs/detection.md explains each rule and where its
// default comes from.
type Settings struct {
	// Window is the length of the tumbling event-time windows in which the
	// detectors count. Rules that count per actor look at the current and
	// the previous window together, so that activity straddling a
	// boundary is not split in two.
	Window Duration `yaml:"window"`
	// AllowedLateness is how far behind the newest record a record may
	// arrive and still be counted; later records are counted in the
	// too_late metric instead.
	AllowedLateness Duration `yaml:"allowed_lateness"`
	// LearningPeriod is how long an instance must have been observed
	// before baseline rules (unusual ports, traffic far above baseline)
	// judge it.
	LearningPeriod Duration `yaml:"learning_period"`
	// MaxTrackedSources bounds the external sources tracked at once;
	// beyond it single-probe sources are evicted first.
	MaxTrackedSources int `yaml:"max_tracked_sources"`

	RepeatedReject     RepeatedRejectSettings     `yaml:"repeated_reject"`
	SlowReject         SlowRejectSettings         `yaml:"slow_reject"`
	Portscan           PortscanSettings           `yaml:"portscan"`
	PortProbe          PortProbeSettings          `yaml:"port_probe"`
	BruteForce         BruteForceSettings         `yaml:"brute_force"`
	InboundFlood       InboundFloodSettings       `yaml:"inbound_flood"`
	DenialOfService    DenialOfServiceSettings    `yaml:"denial_of_service"`
	Exfiltration       ExfiltrationSettings       `yaml:"exfiltration"`
	NetworkPortUnusual NetworkPortUnusualSettings `yaml:"network_port_unusual"`
	ThreatList         ToggleSettings             `yaml:"threat_list"`
	UnexpectedSource   ToggleSettings             `yaml:"unexpected_source"`
	ReturnTraffic      ToggleSettings             `yaml:"return_traffic"`
}

// ToggleSettings is a detector with no threshold.
type ToggleSettings struct {
	Enabled bool `yaml:"enabled"`
}

// RepeatedRejectSettings: Recon:EC2/RepeatedReject.
type RepeatedRejectSettings struct {
	Enabled bool `yaml:"enabled"`
	// MinRejects is the number of rejected connection attempts (not
	// rejected return traffic) from one outside source.
	MinRejects int `yaml:"min_rejects"`
}

// SlowRejectSettings: Recon:EC2/RepeatedReject over a long horizon (the
// slow prober).
type SlowRejectSettings struct {
	Enabled bool `yaml:"enabled"`
	// MinRejects is the number of rejected attempts from one outside
	// source on one port of one host of ours, in at least two windows.
	MinRejects int `yaml:"min_rejects"`
	// Horizon is how far back they count.
	Horizon Duration `yaml:"horizon"`
	// MaxSources bounds the returning sources tracked at once (first
	// sightings cost two bits of a filter, not an entry).
	MaxSources int `yaml:"max_sources"`
}

// PortscanSettings: Recon:EC2/Portscan, inbound, outbound and lateral.
type PortscanSettings struct {
	Enabled bool `yaml:"enabled"`
	// MinPorts is the number of distinct ports of one host with failed
	// attempts (a vertical scan).
	MinPorts int `yaml:"min_ports"`
	// MinHosts is the number of distinct hosts of ours with failed attempts
	// on one port (a horizontal sweep), inbound or lateral.
	MinHosts int `yaml:"min_hosts"`
	// MinHostsOutbound is the number of distinct outside hosts one of our
	// instances must fail to reach on one port within one window.
	MinHostsOutbound int `yaml:"min_hosts_outbound"`
}

// PortProbeSettings: Recon:EC2/PortProbeUnprotectedPort.
type PortProbeSettings struct {
	Enabled bool `yaml:"enabled"`
	// MinSources is the number of distinct outside sources whose probes of
	// one port were accepted.
	MinSources int `yaml:"min_sources"`
	// Ports are the ports judged: services that should not be open to the
	// world (SSH, RDP, databases, Elasticsearch …).
	Ports []uint16 `yaml:"ports,flow"`
}

// BruteForceSettings: UnauthorizedAccess:EC2/SSHBruteForce and RDPBruteForce.
type BruteForceSettings struct {
	Enabled bool `yaml:"enabled"`
	// MinAttempts is the number of connections (distinct client ports)
	// from one source to one host's SSH or RDP port.
	MinAttempts int      `yaml:"min_attempts"`
	SSHPorts    []uint16 `yaml:"ssh_ports,flow"`
	RDPPorts    []uint16 `yaml:"rdp_ports,flow"`
}

// InboundFloodSettings: Impact:EC2/InboundFlood.
type InboundFloodSettings struct {
	Enabled bool `yaml:"enabled"`
	// MinPackets is the least number of inbound packets in a window.
	MinPackets int64 `yaml:"min_packets"`
	// HeavySourcePackets is the packets in a window that make a source
	// heavy; MinHeavySources heavy sources make a flood.
	HeavySourcePackets int64 `yaml:"heavy_source_packets"`
	MinHeavySources    int   `yaml:"min_heavy_sources"`
	// BaselineFactor: packets (or heavy sources) this many times the
	// target's learned baseline.
	BaselineFactor float64 `yaml:"baseline_factor"`
}

// DenialOfServiceSettings: Backdoor:EC2/DenialOfService.*.
type DenialOfServiceSettings struct {
	Enabled bool `yaml:"enabled"`
	// MinPackets is the outbound packets from one instance to one remote
	// host in a window.
	MinPackets int64 `yaml:"min_packets"`
	// MaxAvgPacketBytes: floods send small packets; bulk transfers do not.
	MaxAvgPacketBytes int64 `yaml:"max_avg_packet_bytes"`
}

// ExfiltrationSettings: Exfiltration:EC2/UnusualOutboundVolume.
type ExfiltrationSettings struct {
	Enabled bool `yaml:"enabled"`
	// MinBytes is the outbound bytes from one instance to one outside host
	// in a window.
	MinBytes int64 `yaml:"min_bytes"`
	// BaselineFactor: and this many times the instance's usual largest
	// per-destination volume, once learned.
	BaselineFactor float64 `yaml:"baseline_factor"`
}

// NetworkPortUnusualSettings: Behavior:EC2/NetworkPortUnusual.
type NetworkPortUnusualSettings struct {
	Enabled bool `yaml:"enabled"`
}

// DefaultSettings returns the documented defaults.
func DefaultSettings() Settings {
	return Settings{
		Window:            Duration(5 * time.Minute),
		AllowedLateness:   Duration(15 * time.Minute),
		LearningPeriod:    Duration(24 * time.Hour),
		MaxTrackedSources: 2_000_000,
		RepeatedReject:    RepeatedRejectSettings{Enabled: true, MinRejects: 5},
		SlowReject:        SlowRejectSettings{Enabled: true, MinRejects: 5, Horizon: Duration(24 * time.Hour), MaxSources: 100_000},
		Portscan:          PortscanSettings{Enabled: true, MinPorts: 15, MinHosts: 6, MinHostsOutbound: 25},
		PortProbe: PortProbeSettings{Enabled: true, MinSources: 10,
			Ports: []uint16{22, 23, 445, 1433, 2375, 3306, 3389, 5432, 5900, 6379, 9200, 9300, 11211, 27017}},
		BruteForce: BruteForceSettings{Enabled: true, MinAttempts: 20, SSHPorts: []uint16{22}, RDPPorts: []uint16{3389}},
		InboundFlood: InboundFloodSettings{Enabled: true, MinPackets: 20_000, HeavySourcePackets: 1_000,
			MinHeavySources: 10, BaselineFactor: 10},
		DenialOfService:    DenialOfServiceSettings{Enabled: true, MinPackets: 100_000, MaxAvgPacketBytes: 300},
		Exfiltration:       ExfiltrationSettings{Enabled: true, MinBytes: 100 << 20, BaselineFactor: 10},
		NetworkPortUnusual: NetworkPortUnusualSettings{Enabled: true},
		ThreatList:         ToggleSettings{Enabled: true},
		UnexpectedSource:   ToggleSettings{Enabled: true},
		ReturnTraffic:      ToggleSettings{Enabled: true},
	}
}

// FieldError is a setting with a bad value: Path is its key path in the
// configuration file ("detectors.portscan.min_ports").
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// Validate checks every value; the errors name the key path under prefix
// (for example "detectors").
func (s *Settings) Validate(prefix string) error {
	var errs []error
	bad := func(key, msg string) { errs = append(errs, &FieldError{Path: prefix + "." + key, Msg: msg}) }
	if s.Window < Duration(time.Second) || s.Window > Duration(24*time.Hour) {
		bad("window", fmt.Sprintf("%s is out of range (1s to 24h)", s.Window))
	}
	if s.AllowedLateness < 0 || s.AllowedLateness > Duration(7*24*time.Hour) {
		bad("allowed_lateness", fmt.Sprintf("%s is out of range (0 to 168h)", s.AllowedLateness))
	}
	if s.LearningPeriod < 0 {
		bad("learning_period", "must not be negative")
	}
	if s.MaxTrackedSources < 1000 {
		bad("max_tracked_sources", fmt.Sprintf("%d is too small (at least 1000)", s.MaxTrackedSources))
	}
	atLeast := func(key string, v, lo int64) {
		if v < lo {
			bad(key, fmt.Sprintf("%d is too small (at least %d)", v, lo))
		}
	}
	atLeast("repeated_reject.min_rejects", int64(s.RepeatedReject.MinRejects), 1)
	atLeast("slow_reject.min_rejects", int64(s.SlowReject.MinRejects), 2)
	atLeast("slow_reject.max_sources", int64(s.SlowReject.MaxSources), 100)
	if s.SlowReject.Horizon < s.Window*2 || s.SlowReject.Horizon > Duration(30*24*time.Hour) {
		bad("slow_reject.horizon", fmt.Sprintf("%s is out of range (two windows to 720h)", s.SlowReject.Horizon))
	}
	atLeast("portscan.min_ports", int64(s.Portscan.MinPorts), 2)
	atLeast("portscan.min_hosts", int64(s.Portscan.MinHosts), 2)
	atLeast("portscan.min_hosts_outbound", int64(s.Portscan.MinHostsOutbound), 2)
	atLeast("port_probe.min_sources", int64(s.PortProbe.MinSources), 1)
	atLeast("brute_force.min_attempts", int64(s.BruteForce.MinAttempts), 2)
	atLeast("inbound_flood.min_packets", s.InboundFlood.MinPackets, 1)
	atLeast("inbound_flood.heavy_source_packets", s.InboundFlood.HeavySourcePackets, 1)
	atLeast("inbound_flood.min_heavy_sources", int64(s.InboundFlood.MinHeavySources), 1)
	atLeast("denial_of_service.min_packets", s.DenialOfService.MinPackets, 1)
	atLeast("denial_of_service.max_avg_packet_bytes", s.DenialOfService.MaxAvgPacketBytes, 1)
	atLeast("exfiltration.min_bytes", s.Exfiltration.MinBytes, 1)
	if s.InboundFlood.BaselineFactor < 1 {
		bad("inbound_flood.baseline_factor", fmt.Sprintf("%g is too small (at least 1)", s.InboundFlood.BaselineFactor))
	}
	if s.Exfiltration.BaselineFactor < 1 {
		bad("exfiltration.baseline_factor", fmt.Sprintf("%g is too small (at least 1)", s.Exfiltration.BaselineFactor))
	}
	for _, l := range []struct {
		key   string
		ports []uint16
	}{{"port_probe.ports", s.PortProbe.Ports}, {"brute_force.ssh_ports", s.BruteForce.SSHPorts}, {"brute_force.rdp_ports", s.BruteForce.RDPPorts}} {
		for _, p := range l.ports {
			if p == 0 {
				bad(l.key, "port 0 is not a port")
			}
		}
	}
	return errors.Join(errs...)
}
