// Package config reads flowguard's one configuration file: the networks
// that are ours, the allow list, threat lists, expected sources, the
// detectors' thresholds, and the sections other parts of flowguard add
// (alarms, suppression rules, trusted IPs). Unknown keys are errors, and
// every error names the file, line, column and key path.
package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/cloudtrail"
	"github.com/flowguard/flowguard/internal/detect"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/respond"
	"github.com/flowguard/flowguard/internal/respond/notify"
	"github.com/flowguard/flowguard/internal/source"
	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file.
type Config struct {
	// HomeNetworks are our networks (VPC CIDRs, IPv4 and IPv6); default:
	// the private ranges. List a VPC's IPv6 block here: it is public
	// address space.
	HomeNetworks []Network `yaml:"home_networks,flow"`
	// Allowlist sources are never named as attackers and never blocked.
	Allowlist []Network `yaml:"allowlist,flow"`
	// ThreatLists are files of one IP address or CIDR block a line, '#'
	// starting a comment; relative paths are relative to this file.
	ThreatLists []string `yaml:"threat_lists,flow"`
	// ExpectedSources say who may reach which ports.
	ExpectedSources []ExpectedSource `yaml:"expected_sources"`
	// Detectors are the detection rules' settings.
	Detectors detect.Settings `yaml:"detectors"`
	// CloudTrail is the CloudTrail rules' settings.
	CloudTrail cloudtrail.Settings `yaml:"cloudtrail"`
	// Alarms are metric filters and CloudWatch-style alarms.
	Alarms *alarm.Config `yaml:"alarms,omitempty"`
	// The findings section: suppression_rules and trusted_ips.
	finding.Config `yaml:",inline"`
	// Response is blocking, guards and routing (docs/response.md).
	Response *respond.Config `yaml:"response,omitempty"`
	// Notify configures the notifiers and their message templates.
	Notify *notify.Config `yaml:"notify,omitempty"`
	// Server is the daemon's HTTP API (flowguard serve).
	Server *Server `yaml:"server,omitempty"`
	// Sources are what the daemon follows; each type reads its own keys
	// (internal/source/live.go).
	Sources []source.LiveConfig `yaml:"sources,omitempty"`

	// Path is the file read, "" for the defaults; Dir is its directory.
	Path string `yaml:"-"`
	Dir  string `yaml:"-"`
	// Threats are the entries of the threat lists, once loaded.
	Threats []netip.Prefix `yaml:"-"`
	// AWSRanges are AWS's IP ranges from response.aws_ip_ranges, once
	// loaded (Load); nil when the file names none.
	AWSRanges *respond.AWSRanges `yaml:"-"`

	warnings []*Error
}

// Server configures the daemon's HTTP API.
type Server struct {
	// Listen is the address to serve on; default 127.0.0.1:8787.
	Listen string `yaml:"listen,omitempty"`
	// TokenFile holds the Bearer token that state-changing requests
	// need; when empty, one is generated in the database's directory at
	// first start. Relative to this file.
	TokenFile string `yaml:"token_file,omitempty"`
	// SnapshotInterval is how often the daemon saves its detection state
	// when a source cannot replay its data (SQS, Kinesis, Kafka,
	// Firehose); those sources acknowledge only then. Default 30s.
	SnapshotInterval detect.Duration `yaml:"snapshot_interval,omitempty"`
	// TrafficRetention is how long the daemon keeps the per-minute
	// traffic aggregates the dashboard draws; default 168h (7 days).
	TrafficRetention detect.Duration `yaml:"traffic_retention,omitempty"`
	// QueryBuffer bounds the raw data of the sources other than files
	// (Kinesis, Firehose, Kafka, ...) the daemon keeps in memory for
	// queries and the actor timeline, oldest dropped first; default 256MiB.
	QueryBuffer ByteSize `yaml:"query_buffer,omitempty"`
}

// DefaultQueryBuffer is server.query_buffer's default.
const DefaultQueryBuffer = 256 << 20

// Bounds of server.query_buffer.
const (
	minQueryBuffer = 1 << 20
	maxQueryBuffer = 1 << 30
)

// ByteSize is a number of bytes, written as an integer or with a unit:
// 512KiB, 256MiB, 1GiB (powers of 1024), or KB, MB, GB (powers of 1000).
type ByteSize int64

// UnmarshalYAML reads "256MiB" or 268435456.
func (b *ByteSize) UnmarshalYAML(v *yaml.Node) error {
	var s string
	if v.Kind != yaml.ScalarNode || v.Decode(&s) != nil {
		return fmt.Errorf("line %d: want a size such as 256MiB", v.Line)
	}
	n, err := ParseByteSize(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", v.Line, err)
	}
	*b = n
	return nil
}

// ParseByteSize reads a size such as "256MiB", "1GB" or "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suf)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size (use forms such as 64MiB, 1GiB, 500MB)", s)
	}
	return ByteSize(n * mult), nil
}

// ExpectedSource is one rule of expected_sources: connections to Ports are
// expected only from Sources (and from the home networks).
type ExpectedSource struct {
	Ports   []uint16  `yaml:"ports,flow"`
	Sources []Network `yaml:"sources,flow"`
}

// Network is an IP address or CIDR block; an address is a one-address
// block.
type Network struct{ netip.Prefix }

// UnmarshalYAML reads "10.0.0.0/16" or "203.0.113.7".
func (n *Network) UnmarshalYAML(v *yaml.Node) error {
	var s string
	if v.Kind != yaml.ScalarNode || v.Decode(&s) != nil {
		return fmt.Errorf("line %d: want an IP address or CIDR block", v.Line)
	}
	p, err := finding.ParsePrefix(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", v.Line, err)
	}
	n.Prefix = p
	return nil
}

// MarshalYAML writes the block; a one-address block as the address.
func (n Network) MarshalYAML() (any, error) {
	if n.Bits() == n.Addr().BitLen() {
		return n.Addr().String(), nil
	}
	return n.Prefix.String(), nil
}

// Prefixes returns the blocks of ns.
func Prefixes(ns []Network) []netip.Prefix {
	out := make([]netip.Prefix, len(ns))
	for i, n := range ns {
		out[i] = n.Prefix
	}
	return out
}

func networks(ps []netip.Prefix) []Network {
	out := make([]Network, len(ps))
	for i, p := range ps {
		out[i] = Network{p}
	}
	return out
}

// DefaultConfig returns the documented defaults: the private ranges as
// home networks, nothing allowed or listed, every detector on with its
// default thresholds.
func DefaultConfig() Config {
	return Config{HomeNetworks: networks(detect.DefaultHomeNetworks()), Detectors: detect.DefaultSettings(), CloudTrail: cloudtrail.DefaultSettings()}
}

// Error is a configuration error at a place in the file.
type Error struct {
	File         string
	Line, Column int
	Path         string // key path, e.g. detectors.portscan.min_ports
	Msg          string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads, checks and completes the configuration file at path,
// reading its threat lists and, when response.aws_ip_ranges names one,
// AWS's IP ranges (into AWSRanges).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the configuration: %w", err)
	}
	c, t, err := parse(data, path)
	if err != nil {
		return nil, err
	}
	c.Path, c.Dir = path, filepath.Dir(path)
	if err := c.loadThreatLists(t); err != nil {
		return nil, err
	}
	if err := c.resolveResponse(t); err != nil {
		return nil, err
	}
	return c, nil
}

// resolveResponse makes the response and notify sections' paths relative
// to the file, reads their secret files and AWS's IP ranges, and checks
// them together (routes name notifiers).
func (c *Config) resolveResponse(t *tree) error {
	names := []string{} // not nil: routes naming no configured notifier are errors
	if c.Notify != nil {
		if err := c.Notify.Resolve(c.Dir); err != nil {
			return t.atMessage(c.Path, "notify", err)
		}
		if err := c.Notify.Validate(); err != nil {
			return t.atMessage(c.Path, "notify", err)
		}
		names = c.Notify.Names()
	}
	if c.Response == nil {
		return nil
	}
	c.Response.Resolve(c.Dir)
	if err := c.Response.Validate(names); err != nil {
		return t.atMessage(c.Path, "response", err)
	}
	if c.Response.AWSIPRanges != "" {
		r, err := respond.LoadAWSRanges(c.Response.AWSIPRanges)
		if err != nil {
			return t.at(c.Path, "response.aws_ip_ranges", err.Error())
		}
		c.AWSRanges = r
	}
	return nil
}

// atMessage places each of err's errors at the key path its message
// starts with ("response.nacl.rule_range [0 10]: …"), or at section.
func (t *tree) atMessage(name, section string, err error) error {
	var errs []error
	for _, e := range unjoin(err) {
		msg := e.Error()
		path := section
		if p, _, ok := strings.Cut(msg, " "); ok && strings.HasPrefix(p, section+".") {
			path = strings.TrimSuffix(p, ":")
		}
		pe := t.at(name, path, msg)
		pe.Path = "" // the message names it
		errs = append(errs, pe)
	}
	return errors.Join(errs...)
}

// Warnings returns what the file sets that is valid but likely not what
// was meant (docs/configuration.md, "Bad configuration"), each at its
// place in the file.
func (c *Config) Warnings() []*Error { return c.warnings }

func (c *Config) warn(name string, t *tree) []*Error {
	var out []*Error
	if c.Response != nil {
		for _, w := range c.Response.Warnings() {
			out = append(out, t.at(name, w.Path, w.Msg))
		}
	}
	return out
}

// Parse reads and checks a configuration; name is used in errors. Threat
// lists are not read (see LoadThreatLists).
func Parse(data []byte, name string) (*Config, error) {
	c, _, err := parse(data, name)
	return c, err
}

// parse reads and checks a configuration, and returns where its keys are
// written for the checks that follow (Load).
func parse(data []byte, name string) (*Config, *tree, error) {
	c := DefaultConfig()
	t := newTree()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		e := &Error{File: name, Line: lineOf(msg), Msg: stripLine(msg)}
		var anchor string
		if e.Line == 0 {
			if sscanQuoted(msg, "unknown anchor '", &anchor) {
				e.Line, e.Column = findAlias(data, anchor)
				e.Msg = fmt.Sprintf("unknown anchor %q: no &%s before this *%s", anchor, anchor, anchor)
			}
		}
		return nil, nil, e
	}
	if root.Kind == 0 || len(root.Content) == 0 || root.Content[0].Kind == yaml.ScalarNode && root.Content[0].Tag == "!!null" {
		return &c, t, nil // an empty file: the defaults
	}
	doc, err := expandAliases(root.Content[0], t, name)
	if err != nil {
		return nil, nil, err
	}
	if doc.Kind != yaml.MappingNode {
		return nil, nil, &Error{File: name, Line: doc.Line, Column: doc.Column, Msg: "the configuration must be a mapping of keys (home_networks:, detectors: …)"}
	}
	ck := &checker{t: t, name: name}
	if err := ck.check(doc, configType, ""); err != nil {
		return nil, nil, err
	}
	if err := errors.Join(ck.errs...); err != nil {
		return nil, nil, err
	}
	// Decode the expanded tree: yaml.v3 would report an error inside an
	// anchor's value at the anchor, once for every alias. Unknown keys
	// were refused above, as Decoder.KnownFields would.
	if err := doc.Decode(&c); err != nil {
		return nil, nil, decodeError(name, err, t)
	}
	if err := c.validate(name, t); err != nil {
		return nil, nil, err
	}
	c.warnings = c.warn(name, t)
	return &c, t, nil
}

// sscanQuoted reads the text between prefix and the next single quote.
func sscanQuoted(msg, prefix string, out *string) bool {
	rest, ok := strings.CutPrefix(msg, prefix)
	if !ok {
		return false
	}
	v, _, ok := strings.Cut(rest, "'")
	*out = v
	return ok
}

// findAlias returns the line and column of the first alias *name in data
// (yaml.v3 reports an unknown anchor without a place).
func findAlias(data []byte, name string) (line, col int) {
	for i, l := range strings.Split(string(data), "\n") {
		for from := 0; ; {
			j := strings.Index(l[from:], "*"+name)
			if j < 0 {
				break
			}
			j += from
			end := j + 1 + len(name)
			before := j == 0 || strings.ContainsRune(" \t,[{:-", rune(l[j-1]))
			after := end == len(l) || strings.ContainsRune(" \t,]}\r#", rune(l[end]))
			if before && after {
				return i + 1, j + 1
			}
			from = end
		}
	}
	return 0, 0
}

// decodeError turns yaml.v3's "yaml: unmarshal errors:\n  line 3: …" into
// one line per error, each with the file name.
func decodeError(name string, err error, t *tree) error {
	msgs := []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var errs []error
	for _, m := range msgs {
		line := lineOf(m)
		msg := strings.TrimSpace(stripLine(m))
		// Name the key on that line: the one whose value the message
		// quotes if it quotes one, else the deepest key.
		val := ""
		if i := strings.IndexByte(m, '`'); i >= 0 {
			if j := strings.IndexByte(m[i+1:], '`'); j >= 0 {
				val = m[i+1 : i+1+j]
			}
		}
		key := "" // yaml.v3: mapping key "allowlist" already defined at line 1
		if _, rest, ok := strings.Cut(m, `mapping key "`); ok {
			key, _, _ = strings.Cut(rest, `"`)
		}
		best, path := -1, ""
		var at *yaml.Node
		for p, n := range t.pos {
			if n.Line != line {
				continue
			}
			score := len(p)
			if v := t.val[p]; val != "" && v != nil && v.Kind == yaml.ScalarNode && v.Value == val {
				score += 1000
			}
			if key != "" && t.val[p] != n && n.Value == key { // n is a key, not a sequence item
				score += 1000
			}
			if score > best || score == best && p < path {
				best, path, at = score, p, n
			}
		}
		if at == nil {
			errs = append(errs, &Error{File: name, Line: line, Msg: msg})
			continue
		}
		errs = append(errs, t.errorAt(name, path, at, msg))
	}
	return errors.Join(errs...)
}

func lineOf(msg string) int {
	var n int
	if _, err := fmt.Sscanf(msg, "line %d:", &n); err == nil {
		return n
	}
	return 0
}

func stripLine(msg string) string {
	if strings.HasPrefix(msg, "line ") {
		if i := strings.Index(msg, ": "); i > 0 {
			msg = msg[i+2:]
		}
	}
	// Errors from our UnmarshalYAML methods carry the line once more.
	if strings.HasPrefix(msg, "line ") {
		if i := strings.Index(msg, ": "); i > 0 {
			msg = msg[i+2:]
		}
	}
	return msg
}

func (c *Config) validate(name string, t *tree) error {
	var errs []error
	at := func(path, msg string) { errs = append(errs, t.at(name, path, msg)) }
	if len(c.HomeNetworks) == 0 {
		at("home_networks", "must not be empty (leave the key out for the private ranges)")
	}
	for i, x := range c.ExpectedSources {
		p := fmt.Sprintf("expected_sources[%d]", i)
		if len(x.Ports) == 0 {
			at(p+".ports", "give at least one port")
		}
		for _, port := range x.Ports {
			if port == 0 {
				at(p+".ports", "port 0 is not a port")
			}
		}
		if len(x.Sources) == 0 {
			at(p+".sources", "give at least one source address or CIDR block")
		}
	}
	for i, t := range c.ThreatLists {
		if strings.TrimSpace(t) == "" {
			at(fmt.Sprintf("threat_lists[%d]", i), "empty path")
		}
	}
	if err := c.Detectors.Validate("detectors"); err != nil {
		for _, e := range unjoin(err) {
			var fe *detect.FieldError
			if errors.As(e, &fe) {
				at(fe.Path, fe.Msg)
			} else {
				at("detectors", e.Error())
			}
		}
	}
	if err := c.CloudTrail.Validate("cloudtrail"); err != nil {
		for _, e := range unjoin(err) {
			if fe, ok := errors.AsType[*detect.FieldError](e); ok {
				at(fe.Path, fe.Msg)
			}
		}
	}
	if c.Alarms != nil {
		if err := c.Alarms.Validate(); err != nil {
			for _, e := range unjoin(err) {
				at("alarms", e.Error())
			}
		}
	}
	if c.Server != nil && c.Server.QueryBuffer != 0 && (c.Server.QueryBuffer < minQueryBuffer || c.Server.QueryBuffer > maxQueryBuffer) {
		at("server.query_buffer", fmt.Sprintf("%d bytes is out of range (1MiB to 1GiB)", c.Server.QueryBuffer))
	}
	names := map[string]bool{}
	for _, sc := range c.Sources {
		if names[sc.Name] {
			errs = append(errs, &Error{File: name, Line: sc.Line, Column: sc.Column, Path: "sources", Msg: fmt.Sprintf("two sources are named %q", sc.Name)})
		}
		names[sc.Name] = true
		if _, err := source.NewLive(sc, source.LiveDeps{}); err != nil {
			e := &Error{File: name, Line: sc.Line, Column: sc.Column, Path: "sources", Msg: err.Error()}
			if ke, ok := errors.AsType[*source.KeyError](err); ok {
				e.Line, e.Column, e.Msg = ke.Line, ke.Column, ke.Msg
			}
			errs = append(errs, e)
		}
	}
	if err := c.Config.Validate(); err != nil {
		for _, e := range unjoin(err) {
			key := "suppression_rules"
			if strings.Contains(e.Error(), "trusted") {
				key = "trusted_ips"
			}
			at(key, e.Error())
		}
	}
	return errors.Join(errs...)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

// at returns an error about key path path, at the nearest key path the
// file spells out.
func (t *tree) at(name, path, msg string) *Error {
	for p := path; p != ""; p = parent(p) {
		if n, ok := t.pos[p]; ok {
			return t.errorAt(name, path, n, msg)
		}
	}
	return &Error{File: name, Path: path, Msg: msg}
}

func parent(p string) string {
	if i := strings.LastIndexAny(p, ".["); i > 0 {
		return p[:i]
	}
	return ""
}

// ThreatListPath returns where threat list i is: relative paths are
// relative to the configuration file's directory.
func (c *Config) ThreatListPath(i int) string {
	p := c.ThreatLists[i]
	if filepath.IsAbs(p) || c.Dir == "" {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// LoadThreatLists reads every threat list into Threats.
func (c *Config) LoadThreatLists() error { return c.loadThreatLists(nil) }

// loadThreatLists reads the threat lists; with t, each error is placed at
// the list's entry in the configuration file.
func (c *Config) loadThreatLists(t *tree) error {
	c.Threats = c.Threats[:0]
	var errs []error
	for i := range c.ThreatLists {
		ps, err := ReadThreatList(c.ThreatListPath(i))
		if err != nil {
			if t != nil {
				err = t.at(c.Path, fmt.Sprintf("threat_lists[%d]", i), err.Error())
			}
			errs = append(errs, err)
			continue
		}
		c.Threats = append(c.Threats, ps...)
	}
	return errors.Join(errs...)
}

// ReadThreatList reads a file of one IP address or CIDR block a line;
// blank lines and everything after '#' are ignored.
func ReadThreatList(path string) ([]netip.Prefix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read threat list: %w", err)
	}
	defer f.Close()
	var out []netip.Prefix
	var errs []error
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		p, err := finding.ParsePrefix(line)
		if err != nil {
			if len(errs) < 10 {
				errs = append(errs, fmt.Errorf("%s:%d: %w", path, n, err))
			}
			continue
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("cannot read threat list %s: %w", path, err))
	}
	return out, errors.Join(errs...)
}

// DetectOptions returns the detection engine's options: the home networks,
// the allow list and trusted IPs as never-actors, the threat lists (call
// Load or LoadThreatLists first) and the expected sources.
func (c *Config) DetectOptions() (detect.Options, error) {
	o := detect.Options{Settings: c.Detectors, Home: Prefixes(c.HomeNetworks), Allow: Prefixes(c.Allowlist), Threats: c.Threats}
	trusted, err := finding.ParsePrefixes(c.TrustedIPs)
	if err != nil {
		return o, fmt.Errorf("trusted_ips: %w", err)
	}
	o.Allow = append(o.Allow, trusted...)
	for _, x := range c.ExpectedSources {
		o.Expected = append(o.Expected, detect.ExpectedSource{Ports: x.Ports, Sources: Prefixes(x.Sources)})
	}
	return o, nil
}

// Marshal renders the configuration as YAML, every key spelled out.
func (c *Config) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("cannot render the configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("cannot render the configuration: %w", err)
	}
	return b.Bytes(), nil
}
