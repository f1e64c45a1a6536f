package detect

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/synth"
)

// matches reports whether finding r is the detection of label l: same
// type, actor (inside the label's prefix for floods; none for a
// distributed flood), direction, and target (the label's target, or for
// sweeps the label's port).
func matches(r *Result, l synth.Label) bool {
	if r.Type != l.Type || string(r.Actor.Direction) != l.Direction {
		return false
	}
	if l.Actor == "" {
		// A distributed flood: no actor.
		if r.Actor.IP.IsValid() {
			return false
		}
	} else if pf, err := netip.ParsePrefix(l.Actor); err == nil {
		if !pf.Contains(r.Actor.IP) {
			return false
		}
	} else if r.Actor.IP.String() != l.Actor {
		return false
	}
	if l.Target != "" {
		return r.Target.IP.String() == l.Target
	}
	return !r.Target.IP.IsValid() && len(l.Ports) > 0 && slices.Contains(r.Target.Ports, uint16(l.Ports[0]))
}

type genCase struct {
	records int
	seed    uint64
	format  string
}

func (c genCase) String() string { return fmt.Sprintf("%s-%d-seed%d", c.format, c.records, c.seed) }

// TestGenerated runs the engine over generated traffic of several sizes,
// seeds and formats and checks it against the generator's labels: every
// labelled attack is found with its type, actor and target; no attack
// finding names one of our instances unless it is a labelled outbound
// attack; and unlabelled attack findings stay few.
func TestGenerated(t *testing.T) {
	cases := []genCase{{60000, 11, "v2"}, {150000, 12, "v5"}, {250000, 13, "v2"}, {100000, 14, "v5"}}
	if testing.Short() {
		cases = cases[:1]
	}
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			cfg := synth.DefaultConfig()
			cfg.Records, cfg.Seed = c.records, c.seed
			cfg.Format, _ = synth.ParseFormatName(c.format)
			g := generate(t, cfg)
			if len(g.labels) < 8 {
				t.Fatalf("the generator labelled only %d attacks", len(g.labels))
			}
			o := Options{Settings: DefaultSettings(), Home: g.home, Threats: g.threats}
			e := runEngine(t, o, 0, 2, input("gen.log", g.text))
			rs := e.Results()
			undeclared(t, rs)
			for _, l := range g.labels {
				found := false
				for _, r := range rs {
					if matches(r, l) {
						found = true
						break
					}
				}
				if !found {
					t.Errorf("missed labelled %s %s: %s → %s%v", l.Scenario, l.Type, l.Actor, l.Target, l.Ports[:min(len(l.Ports), 3)])
				}
			}
			ours := map[netip.Addr]bool{}
			for _, ifc := range g.ifaces {
				ours[ifc.Addr] = true
				if ifc.Addr6.IsValid() {
					ours[ifc.Addr6] = true
				}
			}
			unlabelled := map[string]int{}
			for _, r := range attacks(rs) {
				labelled := false
				for _, l := range g.labels {
					if matches(r, l) {
						labelled = true
					}
				}
				if labelled {
					continue
				}
				if ours[r.Actor.IP] {
					t.Errorf("attack finding names our instance %s as actor without a label: %s", r.Actor.IP, r.Title)
				}
				if r.Actor.Direction == finding.Inbound && (g.home[0].Contains(r.Actor.IP) || g.home[1].Contains(r.Actor.IP)) {
					t.Errorf("inbound finding with an actor in our networks: %s", r.Title)
				}
				unlabelled[r.Type]++
			}
			t.Logf("unlabelled attack findings: %v", unlabelled)
			// Repeated rejects from the internet's returning scanners and
			// probes of the world-open SSH/RDP ports are real by their
			// rules' definitions; anything else unlabelled is a false
			// positive.
			other := 0
			for typ, n := range unlabelled {
				if typ != TypeRepeatedReject && typ != TypePortProbe {
					other += n
				}
			}
			if other > 1 {
				t.Errorf("%d unlabelled attack findings besides repeated rejects and port probes", other)
			}
			if unlabelled[TypePortProbe] > 3 {
				t.Errorf("%d port-probe findings", unlabelled[TypePortProbe])
			}
		})
	}
}

// comparable returns the findings without their samples, for comparing
// runs whose record order differs.
func comparable(rs []*Result) []finding.Finding {
	out := make([]finding.Finding, len(rs))
	for i, r := range rs {
		out[i] = r.Finding
	}
	return out
}

// TestOrderIndependence reads the same records in one pass, in many small
// batches on several workers, and shuffled within the allowed lateness,
// and expects the same findings; with and without the hard scenarios (the
// long-horizon rule and the flood's steady sources keep state across
// windows).
func TestOrderIndependence(t *testing.T) {
	for _, hard := range []bool{false, true} {
		t.Run(fmt.Sprintf("hard=%v", hard), func(t *testing.T) {
			cfg := synth.DefaultConfig()
			cfg.Records, cfg.Seed, cfg.Hard = 80000, 21, hard
			if hard {
				cfg.Duration = 2 * time.Hour
			}
			orderIndependence(t, cfg)
		})
	}
}

func orderIndependence(t *testing.T, cfg synth.Config) {
	g := generate(t, cfg)
	o := Options{Settings: DefaultSettings(), Home: g.home, Threats: g.threats}

	onePass := runEngine(t, o, 64<<20, 1, input("gen.log", g.text))
	want := comparable(onePass.Results())
	if len(want) < 10 {
		t.Fatalf("only %d findings; the test would prove little", len(want))
	}
	small := runEngine(t, o, 4<<10, 3, input("gen.log", g.text))
	if got := comparable(small.Results()); !reflect.DeepEqual(got, want) {
		t.Errorf("small batches: %s", diffFindings(got, want))
	}

	// Shuffle: sort the records by start plus a random delay of up to the
	// allowed lateness less one window, so that no record is later than
	// the bound relative to any record before it.
	lines := splitLines(g.text)
	header, recs := lines[0], lines[1:]
	r := rand.New(rand.NewPCG(5, 6))
	lateness := int64(15 * 60)
	type keyed struct {
		key  int64
		line string
	}
	ks := make([]keyed, len(recs))
	for i, l := range recs {
		f := strings.Fields(l)
		st, _ := strconv.ParseInt(f[10], 10, 64)
		if f[10] == "-" {
			st = 0
		}
		ks[i] = keyed{st + r.Int64N(lateness-60), l}
	}
	sort.SliceStable(ks, func(i, j int) bool { return ks[i].key < ks[j].key })
	var b strings.Builder
	b.WriteString(header + "\n")
	for _, k := range ks {
		b.WriteString(k.line + "\n")
	}
	shuffled := runEngine(t, o, 16<<10, 2, input("shuffled.log", []byte(b.String())))
	if m := shuffled.Metrics(); m.TooLate != 0 {
		t.Errorf("%d records too late in a shuffle within the bound", m.TooLate)
	}
	if got := comparable(shuffled.Results()); !reflect.DeepEqual(got, want) {
		t.Errorf("shuffled: %s", diffFindings(got, want))
	}
}

func diffFindings(got, want []finding.Finding) string {
	g := map[string]finding.Finding{}
	for _, f := range got {
		g[f.ID] = f
	}
	var out []string
	for _, w := range want {
		f, ok := g[w.ID]
		if !ok {
			out = append(out, "missing "+w.Title)
			continue
		}
		if !reflect.DeepEqual(f, w) {
			out = append(out, fmt.Sprintf("differs: %+v\n  want %+v", f, w))
		}
		delete(g, w.ID)
	}
	for _, f := range g {
		out = append(out, "extra "+f.Title)
	}
	if len(out) > 5 {
		out = out[:5]
	}
	return fmt.Sprintf("%d vs %d findings: %s", len(got), len(want), strings.Join(out, "\n"))
}

// undeclared fails for evidence keys missing from the evidence table
// (finding.LookupEvidence): each key's merge rule is declared once.
func undeclared(t *testing.T, rs []*Result) {
	t.Helper()
	for _, r := range rs {
		for k := range r.Evidence {
			if _, ok := finding.LookupEvidence(finding.EvidenceKey(k)); !ok {
				t.Errorf("%s: evidence key %q is not declared in finding's evidence table", r.Type, k)
			}
		}
	}
}

// TestHardScenarios runs the engine over generated traffic with the hard
// scenarios (synth.Config.Hard: a distributed SYN flood next to a busy
// legitimate client of the same host, and a slow prober among one-off
// background probes) at several seeds, sizes and formats: every labelled
// attack is found, the distributed flood names no actor, and no innocent
// — the busy client, a source seen only once, one of our instances — is
// named.
func TestHardScenarios(t *testing.T) {
	cases := []genCase{{120000, 31, "v2"}, {200000, 32, "v5"}, {300000, 33, "v2"}, {150000, 34, "v5"}}
	if testing.Short() {
		cases = cases[:1]
	}
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			cfg := synth.DefaultConfig()
			cfg.Records, cfg.Seed, cfg.Hard = c.records, c.seed, true
			cfg.Duration = 3 * time.Hour
			cfg.Format, _ = synth.ParseFormatName(c.format)
			gen := synth.New(cfg)
			g := generate(t, cfg)
			api := gen.APIClient()
			if !api.IsValid() {
				t.Fatal("no API client")
			}
			scenarios := map[string]bool{}
			for _, l := range g.labels {
				scenarios[l.Scenario] = true
			}
			if !scenarios["distributed-flood"] || !scenarios["slow-prober"] {
				t.Fatalf("the generator did not label the hard scenarios: %v", scenarios)
			}
			// How often each source address appears: one-off probes appear once.
			seen := map[string]int{}
			const srcCol = 3 // srcaddr, in v2 and v5
			for i, line := range splitLines(g.text) {
				f := fields(line)
				if i == 0 && f[0] == "version" || len(f) <= srcCol {
					continue
				}
				seen[f[srcCol]]++
			}
			o := Options{Settings: DefaultSettings(), Home: g.home, Threats: g.threats}
			e := runEngine(t, o, 0, 2, input("gen.log", g.text))
			rs := e.Results()
			undeclared(t, rs)
			for _, l := range g.labels {
				found := false
				for _, r := range rs {
					found = found || matches(r, l)
				}
				if !found {
					t.Errorf("missed labelled %s %s: %q → %s%v", l.Scenario, l.Type, l.Actor, l.Target, l.Ports[:min(len(l.Ports), 3)])
				}
			}
			ours := map[netip.Addr]bool{}
			for _, ifc := range g.ifaces {
				ours[ifc.Addr] = true
			}
			for _, r := range rs {
				if r.Actor.IP == api {
					t.Errorf("the busy legitimate client is named: %s", r.Title)
				}
				if top, ok := r.Evidence["top_sources"].([]TopSource); ok {
					for _, s := range top {
						if s.IP == api {
							t.Errorf("the busy legitimate client is listed among a flood's sources: %s", r.Title)
						}
					}
				}
				if r.Actor.IP.IsValid() && r.Actor.Direction == finding.Inbound && seen[r.Actor.IP.String()] == 1 {
					t.Errorf("a one-off probe is named: %s", r.Title)
				}
				if IsAttack(r.Type) && ours[r.Actor.IP] && r.Actor.Direction == finding.Inbound {
					t.Errorf("our instance named as an inbound actor: %s", r.Title)
				}
				if r.Type == TypeInboundFlood && !r.Actor.IP.IsValid() {
					t.Logf("distributed flood: %s, top sources %v", r.Title, r.Evidence["top_sources"])
				}
			}
			for _, d := range e.detectors {
				if sr, ok := d.(*slowReject); ok {
					t.Logf("slow rule: %d returning (source, host, port) tracked of %d distinct sources", len(sr.srcs), len(seen))
					if len(sr.srcs) > len(seen)/10 {
						t.Errorf("%d returning sources tracked: the first-seen filter should keep one-off probes out", len(sr.srcs))
					}
				}
			}
		})
	}
}
