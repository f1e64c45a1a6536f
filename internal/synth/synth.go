// Package synth generates realistic synthetic VPC flow logs with labelled
// attacks, for tests, benchmarks and demonstrations.
//
// The traffic is that of one account and one VPC (10.0.0.0/16 and
// 2600:1f18:abc::/56) with public, application and data subnets in two
// Availability Zones: web clients reaching an Application Load Balancer,
// the load balancer forwarding to its targets and health-checking them,
// application servers talking to databases (logged on both interfaces, each
// direction), instances reaching the internet through a NAT gateway (with
// pkt-srcaddr/pkt-dstaddr showing the far side), S3 through a gateway
// endpoint, IPv6 through an egress-only gateway, administrators on the
// bastion host, and the internet's background noise of single probes.
// NODATA and SKIPDATA records appear as AWS writes them.
//
// On top of that run labelled attacks (port scans, a horizontal sweep, SSH
// and RDP brute force, an inbound flood, exfiltration, an outbound scan by a
// compromised instance, a caller from a threat list). Each attack's label
// says what it is, who did it to whom, when, and how many records it
// produced; labels are computed from the records actually written.
//
// Output is deterministic: the same Config gives byte-identical output.
package synth

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// Window is the aggregation interval of the generated flow logs.
const Window = 60 * time.Second

const windowSec = int64(Window / time.Second)

// Config says what to generate.
type Config struct {
	Records int       // number of records to write (exactly)
	Seed    uint64    // random seed; the same seed gives the same output
	Start   time.Time // start of the first aggregation window
	// Duration of the traffic. Zero derives it from Records (about 2,000
	// records per minute, at least 30 minutes).
	Duration time.Duration
	// Format of text output and the columns of Parquet output; nil means
	// the default (version 2) format.
	Format    *flowlog.Format
	AccountID string // 12 digits
	Region    string // e.g. us-east-1
	// AttackShare is the share of records given to labelled attacks
	// (approximately; very small runs get relatively more). Zero means the
	// default of 2%; a negative value disables attacks.
	AttackShare float64
	// LateShare is the share of records delivered one to three windows
	// late. Zero means the default of 2%; negative means none.
	LateShare float64
	// Hard adds the scenarios that a naive detector gets wrong: a
	// distributed SYN flood next to a busy legitimate client of the same
	// host, and a slow prober among one-off background probes (see
	// hard.go). Off by default, so that default output stays as it was.
	Hard bool
}

// DefaultStart is the default start time: fixed, so that output is
// reproducible.
var DefaultStart = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// DefaultConfig returns the configuration used by `flowguard gen` without
// flags.
func DefaultConfig() Config {
	return Config{
		Records:   100000,
		Seed:      1,
		Start:     DefaultStart,
		Format:    flowlog.DefaultFormat(),
		AccountID: "123456789012",
		Region:    "us-east-1",
	}
}

// V5FormatString is every field of versions 2 to 5 in AWS's documented
// order, the format of the v5 output.
var V5FormatString = func() string {
	s := ""
	for f := flowlog.FieldVersion; f <= flowlog.FieldTrafficPath; f++ {
		if s != "" {
			s += " "
		}
		s += "${" + f.String() + "}"
	}
	return s
}()

// Direction is the flow-direction of a record, relative to its interface.
type Direction uint8

// Flow directions.
const (
	Ingress Direction = iota + 1
	Egress
)

func (d Direction) String() string {
	switch d {
	case Ingress:
		return "ingress"
	case Egress:
		return "egress"
	}
	return "-"
}

// Record is one generated flow log record. Traffic fields (addresses,
// ports, protocol, packets, bytes, action, tcp-flags, type, direction …)
// are present only when LogStatus is OK.
type Record struct {
	Iface            *Interface // the network interface that logged it
	SrcAddr, DstAddr netip.Addr
	PktSrc, PktDst   netip.Addr
	SrcPort, DstPort uint16
	Protocol         uint8
	TCPFlags         uint8
	Packets, Bytes   uint64
	Start, End       int64 // Unix seconds
	Action           flowlog.Action
	LogStatus        flowlog.LogStatus
	Direction        Direction
	TrafficPath      uint8  // 0: absent
	PktSrcService    string // "": absent
	PktDstService    string

	attack int16 // index of the attack episode + 1; 0 for background
}

// Generator produces the records of a Config. It is not safe for
// concurrent use.
type Generator struct {
	cfg     Config
	topo    *topology
	version int
	windows int // planned number of windows

	// run state
	r       *rand.Rand
	buf     []Record
	late    [4][]Record
	conts   []cont
	next    []cont
	eps     []*episode
	labels  []Label
	emitted int
	hard    *hardState // Config.Hard
}

// New returns a generator for cfg; zero fields of cfg take the defaults
// of DefaultConfig.
func New(cfg Config) *Generator {
	def := DefaultConfig()
	if cfg.Records < 0 {
		cfg.Records = 0
	}
	if cfg.Start.IsZero() {
		cfg.Start = def.Start
	}
	cfg.Start = cfg.Start.UTC().Truncate(time.Second)
	if cfg.Format == nil {
		cfg.Format = def.Format
	}
	if cfg.AccountID == "" {
		cfg.AccountID = def.AccountID
	}
	if cfg.Region == "" {
		cfg.Region = def.Region
	}
	if cfg.AttackShare == 0 {
		cfg.AttackShare = 0.02
	}
	if cfg.LateShare == 0 {
		cfg.LateShare = 0.02
	}
	if cfg.Duration <= 0 {
		cfg.Duration = time.Duration(cfg.Records/2000) * time.Minute
		if cfg.Duration < 30*time.Minute {
			cfg.Duration = 30 * time.Minute
		}
	}
	g := &Generator{cfg: cfg, version: cfg.Format.Version()}
	g.windows = max(1, int(cfg.Duration/Window))
	g.topo = newTopology(cfg, rand.New(rand.NewPCG(cfg.Seed, 0x746f706f6c6f6779)))
	return g
}

// Config returns the configuration in use, defaults filled in.
func (g *Generator) Config() Config { return g.cfg }

// Interfaces returns the network interfaces of the generated VPC.
func (g *Generator) Interfaces() []*Interface { return g.topo.ifaces }

// HomeNetworks returns the VPC's IPv4 and IPv6 ranges.
func (g *Generator) HomeNetworks() []netip.Prefix {
	return []netip.Prefix{vpcV4, vpcV6}
}

// OfficeNetwork returns the administrators' range: expected to reach the
// bastion on port 22, and a good allow-list entry.
func (g *Generator) OfficeNetwork() netip.Prefix { return officeNet }

// ThreatList returns the addresses of the generated threat list, some of
// which call the VPC (see the MaliciousIPCaller labels).
func (g *Generator) ThreatList() []netip.Addr { return slices.Clone(g.topo.threats) }

// Labels returns the labelled attacks of the last run (WriteText,
// WriteParquet, WriteS3 or Each), ordered by first_seen. Attacks that
// produced no record are left out.
func (g *Generator) Labels() []Label { return slices.Clone(g.labels) }

// Each generates the records in output order and calls fn for each. The
// record is valid only during the call. An error from fn stops the run
// and is returned.
func (g *Generator) Each(fn func(r *Record) error) error {
	return g.run(func(r *Record, _ int) error { return fn(r) })
}

// run generates cfg.Records records and calls emit with each, and the
// index of the window in which it is delivered.
func (g *Generator) run(emit func(r *Record, win int) error) error {
	g.r = rand.New(rand.NewPCG(g.cfg.Seed, 0x666c6f7773796e74))
	g.buf = g.buf[:0]
	for i := range g.late {
		g.late[i] = g.late[i][:0]
	}
	g.conts, g.next = g.conts[:0], g.next[:0]
	g.emitted = 0
	g.hard = nil
	g.planAttacks()

	n := g.cfg.Records
	bgTotal := n
	for _, ep := range g.eps {
		bgTotal -= ep.plannedRecords
	}
	if g.hard != nil {
		bgTotal -= 2 * g.windows // the API client's connection, both ways
	}
	bgTotal = max(bgTotal, n/2)
	perWin := float64(bgTotal) / float64(g.windows)

	for w := 0; g.emitted < n; w++ {
		ws := g.cfg.Start.Unix() + int64(w)*windowSec
		g.buf = g.buf[:0]
		// Connections continued from the previous window.
		g.conts, g.next = g.next, g.conts[:0]
		for i := range g.conts {
			g.continueConn(&g.conts[i], ws)
		}
		for i, ep := range g.eps {
			if w >= ep.first && w <= ep.last {
				start := len(g.buf)
				ep.step(g, ep, w, ws)
				for j := start; j < len(g.buf); j++ {
					g.buf[j].attack = int16(i + 1)
				}
			}
		}
		if g.hard != nil {
			g.apiTraffic(ws)
		}
		target := int(perWin*g.diurnal(ws)*(0.9+0.2*g.r.Float64()) + 0.5)
		target = max(target, 1)
		for produced := 0; produced < target; {
			produced += g.background(ws)
		}
		// Shuffle: records of one window are delivered in no particular
		// order.
		for i := len(g.buf) - 1; i > 0; i-- {
			j := g.r.IntN(i + 1)
			g.buf[i], g.buf[j] = g.buf[j], g.buf[i]
		}
		// Some records arrive late, in a later window's delivery.
		slot := w % len(g.late)
		due := g.late[slot]
		g.late[slot] = nil
		if g.cfg.LateShare > 0 {
			k := 0
			for i := range g.buf {
				if g.r.Float64() < g.cfg.LateShare {
					d := (w + 1 + g.r.IntN(3)) % len(g.late)
					g.late[d] = append(g.late[d], g.buf[i])
					continue
				}
				g.buf[k] = g.buf[i]
				k++
			}
			g.buf = g.buf[:k]
		}
		g.buf = append(g.buf, due...)
		for i := range g.buf {
			if g.emitted >= n {
				break
			}
			r := &g.buf[i]
			if r.attack > 0 {
				g.eps[r.attack-1].observe(r)
			}
			if err := emit(r, w); err != nil {
				return err
			}
			g.emitted++
		}
		g.late[slot] = due[:0]
	}
	g.collectLabels()
	return nil
}

// diurnal is the relative traffic level at Unix time t: busier in the
// (UTC) afternoon.
func (g *Generator) diurnal(t int64) float64 {
	h := float64(t%86400) / 3600
	// Piecewise-linear day curve around 1.0 (avoids math in the hot path;
	// called once per window).
	switch {
	case h < 6:
		return 0.75
	case h < 12:
		return 0.75 + 0.5*(h-6)/6
	case h < 18:
		return 1.25
	default:
		return 1.25 - 0.5*(h-18)/6
	}
}

func (g *Generator) collectLabels() {
	g.labels = g.labels[:0]
	for _, ep := range g.eps {
		if l, ok := ep.label(); ok {
			g.labels = append(g.labels, l)
		}
	}
	slices.SortStableFunc(g.labels, func(a, b Label) int {
		if c := a.FirstSeen.Compare(b.FirstSeen); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		return cmp.Compare(a.Actor, b.Actor)
	})
}

// ParseFormatName resolves the --format flag: "v2" (or empty), "v5", or a
// format string in AWS's ${field} syntax.
func ParseFormatName(s string) (*flowlog.Format, error) {
	switch s {
	case "", "v2", "default":
		return flowlog.DefaultFormat(), nil
	case "v5":
		return flowlog.MustParseFormat(V5FormatString), nil
	}
	f, err := flowlog.ParseFormat(s)
	if err != nil {
		return nil, fmt.Errorf("invalid format %q: %w", s, err)
	}
	return f, nil
}
