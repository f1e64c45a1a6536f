package server

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/netip"
	"sort"
	"strings"

	"github.com/flowguard/flowguard/internal/detect"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/query"
)

// Explanation is what flowguard detect --explain prints of a finding
// beyond the finding itself: the rule's sentence, the thresholds in force
// when it was raised, and a few of its records. The daemon records it
// with the finding (store.StreamCommit.Explanations); GET
// /api/v1/findings/{id} serves it as "explanation".
type Explanation struct {
	Rule       string          `json:"rule"`
	Thresholds map[string]any  `json:"thresholds,omitempty"`
	Samples    []detect.Sample `json:"samples,omitempty"`
}

// ExplanationOf returns the explanation of a detection result.
func ExplanationOf(r *detect.Result) Explanation {
	return Explanation{Rule: r.Rule, Thresholds: r.Thresholds, Samples: r.Samples}
}

// WriteExplanation writes one finding and its explanation (nil: none
// recorded) as flowguard detect --explain prints them. Text from the
// records is escaped so that it cannot move the cursor of a terminal.
func WriteExplanation(w io.Writer, f *finding.Finding, e *Explanation) error {
	esc := query.EscapeText
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s (%s %.1f)\n", esc(f.Title), esc(f.Type), finding.Level(f.Severity), f.Severity)
	fmt.Fprintf(&b, "  id:         %s\n", f.ID)
	fmt.Fprintf(&b, "  actor:      %s (%s)\n", AddrText(f.Actor.IP), esc(string(f.Actor.Direction)))
	tgt := AddrText(f.Target.IP)
	if len(f.Target.Ports) > 0 {
		ports := make([]string, len(f.Target.Ports))
		for i, p := range f.Target.Ports {
			ports[i] = fmt.Sprint(p)
		}
		tgt += " ports " + strings.Join(ports, ",")
	}
	fmt.Fprintf(&b, "  target:     %s\n", tgt)
	fmt.Fprintf(&b, "  seen:       %s to %s, %s records or events\n", f.FirstSeen.Format("2006-01-02 15:04:05"), f.LastSeen.Format("15:04:05"), detect.Num(f.Count))
	if e != nil {
		fmt.Fprintf(&b, "  rule:       %s\n", esc(e.Rule))
		if len(e.Thresholds) > 0 {
			fmt.Fprintf(&b, "  thresholds: %s\n", esc(kv(e.Thresholds)))
		}
	}
	fmt.Fprintf(&b, "  evidence:   %s\n", esc(kv(f.Evidence)))
	if f.Archived {
		b.WriteString("  archived by a suppression rule\n")
	}
	if e != nil && len(e.Samples) > 0 {
		b.WriteString("  records:\n")
		for _, s := range e.Samples {
			loc := s.Source
			if s.Line > 0 {
				loc += fmt.Sprintf(":%d", s.Line)
			}
			fmt.Fprintf(&b, "    %s: %s\n", esc(loc), esc(s.Text))
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("cannot write: %w", err)
	}
	return nil
}

// explained is the explanation the API serves: the recorded one and the
// text detect --explain prints.
type explained struct {
	*Explanation
	Text string `json:"text"`
}

// explain decodes a recorded explanation (nil when none) and writes the
// text of the finding with it.
func explain(f *finding.Finding, raw []byte) (explained, error) {
	var out explained
	if raw != nil {
		out.Explanation = &Explanation{}
		if err := json.Unmarshal(raw, out.Explanation); err != nil {
			return out, fmt.Errorf("the explanation of finding %s is damaged: %w", f.ID, err)
		}
	}
	var b strings.Builder
	if err := WriteExplanation(&b, f, out.Explanation); err != nil {
		return out, err
	}
	out.Text = b.String()
	if out.Explanation == nil {
		out.Explanation = &Explanation{}
	}
	return out, nil
}

// AddrText writes an address, or "-" for none.
func AddrText(a netip.Addr) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}

// kv writes a map as sorted key=value pairs; whole numbers (JSON gives
// float64) are written with thousands separators.
func kv(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := m[k]
		switch x := v.(type) {
		case int64:
			v = detect.Num(x)
		case int:
			v = detect.Num(int64(x))
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
				v = detect.Num(int64(x))
			}
		}
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	return strings.Join(parts, " ")
}
