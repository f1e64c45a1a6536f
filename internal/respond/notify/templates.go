package notify

import (
	"bytes"
	"embed"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/respond"
)

//go:embed templates/*.tmpl
var embedded embed.FS

// ActionKind says what flowguard did about a finding.
type ActionKind string

// Action kinds.
const (
	ActionBlocked   ActionKind = "blocked"   // a deny entry was added
	ActionWouldBan  ActionKind = "would"     // dry-run: it would have been added
	ActionRefused   ActionKind = "refused"   // a guard refused (Reason says which)
	ActionFailed    ActionKind = "failed"    // the blocker failed (Reason says why)
	ActionUnblocked ActionKind = "unblocked" // a block expired or was removed
)

// Action is one thing flowguard did, or did not do, about a finding; the
// pipeline passes them to Render so the message can say so.
type Action struct {
	FindingID string
	Kind      ActionKind
	Prefix    netip.Prefix
	// Target is where: "nacl:acl-…" or "wafv2:REGIONAL/name/id".
	Target  string
	Expires time.Time
	Reason  string
}

// Data is what the templates see.
type Data struct {
	Events  []respond.Event
	Actions []Action
	// DryRun is true when flowguard runs without enforce: nothing is
	// blocked.
	DryRun bool
	// Link to the dashboard, if any.
	Link string
	// Now is when the message is rendered.
	Now time.Time
}

// Templates renders messages from text/template templates. The embedded
// defaults define "subject" and "text" (and the helpers they call) for each
// language; files named in the config are parsed after them, and any
// {{define "name"}} in them replaces the default of that name.
type Templates struct {
	lang string
	loc  *time.Location
	link string
	tmpl *template.Template
}

// NewTemplates loads the embedded templates for lang ("" means English),
// then the override files. Times are shown in loc (nil means UTC).
func NewTemplates(lang string, loc *time.Location, overrides ...string) (*Templates, error) {
	if lang == "" {
		lang = English
	}
	if lang != English && lang != Japanese {
		return nil, fmt.Errorf("notify: language %q: want en or ja", lang)
	}
	if loc == nil {
		loc = time.UTC
	}
	t := &Templates{lang: lang, loc: loc}
	root := template.New("flowguard").Option("missingkey=error").Funcs(t.funcs())
	src, err := embedded.ReadFile("templates/" + lang + ".tmpl")
	if err != nil {
		return nil, fmt.Errorf("notify: cannot read embedded %s templates: %w", lang, err)
	}
	if _, err := root.Parse(string(src)); err != nil {
		return nil, fmt.Errorf("notify: cannot parse embedded %s templates: %w", lang, err)
	}
	for _, f := range overrides {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("notify: cannot read template %s: %w", f, err)
		}
		if _, err := root.New(f).Parse(string(b)); err != nil {
			return nil, fmt.Errorf("notify: cannot parse template %s: %w", f, err)
		}
	}
	for _, name := range []string{"subject", "text"} {
		if root.Lookup(name) == nil {
			return nil, fmt.Errorf("notify: templates define no %q", name)
		}
	}
	t.tmpl = root
	return t, nil
}

// FromConfig loads the templates the configuration names.
func FromConfig(c *Config) (*Templates, error) {
	loc := time.UTC
	if c.Timezone != "" {
		l, err := time.LoadLocation(c.Timezone)
		if err != nil {
			return nil, fmt.Errorf("notify: timezone %q: %w", c.Timezone, err)
		}
		loc = l
	}
	t, err := NewTemplates(c.Language, loc, c.Templates...)
	if err != nil {
		return nil, err
	}
	t.link = c.DashboardURL
	return t, nil
}

// Language is the templates' language, "en" or "ja".
func (t *Templates) Language() string { return t.lang }

// Render renders the subject and text of a message about d.Events. The
// subject is one line; notifiers shorten it to their own limits.
func (t *Templates) Render(d Data) (respond.Message, error) {
	if len(d.Events) == 0 {
		return respond.Message{}, fmt.Errorf("notify: nothing to render: no events")
	}
	for i, e := range d.Events {
		if e.Finding == nil && e.Alarm == nil {
			return respond.Message{}, fmt.Errorf("notify: event %d has neither a finding nor an alarm change", i)
		}
	}
	if d.Now.IsZero() {
		d.Now = time.Now()
	}
	if d.Link == "" {
		d.Link = t.link
	}
	var subj, text bytes.Buffer
	if err := t.tmpl.ExecuteTemplate(&subj, "subject", d); err != nil {
		return respond.Message{}, fmt.Errorf("notify: cannot render subject: %w", err)
	}
	if err := t.tmpl.ExecuteTemplate(&text, "text", d); err != nil {
		return respond.Message{}, fmt.Errorf("notify: cannot render text: %w", err)
	}
	return respond.Message{
		Subject: oneLine(subj.String()),
		Text:    tidy(text.String()),
		Events:  d.Events,
		Link:    d.Link,
	}, nil
}

// oneLine folds whitespace runs (line breaks included) into single spaces
// and drops control characters.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// tidy trims trailing spaces and collapses runs of blank lines, so the
// templates can be written readably.
func tidy(s string) string {
	lines := strings.Split(s, "\n")
	out := make([]string, 0, len(lines))
	blank := true // drop leading blank lines
	for _, l := range lines {
		l = strings.TrimRight(l, " \t")
		if l == "" {
			if blank {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, l)
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return strings.Join(out, "\n") + "\n"
}

func (t *Templates) funcs() template.FuncMap {
	return template.FuncMap{
		"level":   func(sev float64) string { return levelName(t.lang, sev) },
		"levelEN": finding.Level,
		"sev":     func(sev float64) string { return strconv.FormatFloat(sev, 'f', 1, 64) },
		"num":     groupDigits,
		"time":    func(ts time.Time) string { return formatTime(t.lang, ts.In(t.loc)) },
		"clock":   func(ts time.Time) string { return ts.In(t.loc).Format("15:04") },
		"zone":    func(ts time.Time) string { return ts.In(t.loc).Format("MST") },
		"sameDay": func(a, b time.Time) bool { return a.In(t.loc).Format("20060102") == b.In(t.loc).Format("20060102") },
		"dur":     func(a, b time.Time) string { return formatDuration(t.lang, b.Sub(a)) },
		"ports":   formatPorts,
		"kind":    kind,
		"maxSev":  maxSeverity,
		"counts":  countLevels,
		"actions": actionsFor,
		"addr": func(a netip.Addr) string {
			if !a.IsValid() {
				return ""
			}
			return a.String()
		},
		"add":        func(a, b int) int { return a + b },
		"findings":   func(evs []respond.Event) int { return countKind(evs, true) },
		"alarms":     func(evs []respond.Event) int { return countKind(evs, false) },
		"firstEvent": func(evs []respond.Event) respond.Event { return evs[0] },
		"val":        func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) },
		"upper":      strings.ToUpper,
		"lastN": func(n int, dps []alarm.Datapoint) []alarm.Datapoint {
			if len(dps) > n {
				return dps[len(dps)-n:]
			}
			return dps
		},
		"dict": func(kv ...any) (map[string]any, error) {
			if len(kv)%2 != 0 {
				return nil, fmt.Errorf("dict: odd number of arguments")
			}
			m := make(map[string]any, len(kv)/2)
			for i := 0; i < len(kv); i += 2 {
				k, ok := kv[i].(string)
				if !ok {
					return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
				}
				m[k] = kv[i+1]
			}
			return m, nil
		},
		"hasPrefix": strings.HasPrefix,
		"contains":  strings.Contains,
	}
}

// levelName names a severity level in the language.
func levelName(lang string, sev float64) string {
	l := finding.Level(sev)
	if lang == Japanese {
		switch l {
		case "High":
			return "高"
		case "Medium":
			return "中"
		}
		return "低"
	}
	return l
}

func formatTime(lang string, ts time.Time) string {
	if ts.IsZero() {
		return "-"
	}
	if lang == Japanese {
		return ts.Format("2006-01-02 15:04:05 MST")
	}
	return ts.Format("Mon 2 Jan 2006 15:04:05 MST")
}

func formatDuration(lang string, d time.Duration) string {
	if d < 0 {
		d = -d
	}
	d = d.Round(time.Second)
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	if lang == Japanese {
		switch {
		case h > 0 && m > 0:
			return fmt.Sprintf("%d時間%d分", h, m)
		case h > 0:
			return fmt.Sprintf("%d時間", h)
		case m > 0 && s > 0:
			return fmt.Sprintf("%d分%d秒", m, s)
		case m > 0:
			return fmt.Sprintf("%d分", m)
		}
		return fmt.Sprintf("%d秒", s)
	}
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return strconv.Itoa(n) + " " + unit + "s"
	}
	switch {
	case h > 0 && m > 0:
		return plural(h, "hour") + " " + plural(m, "minute")
	case h > 0:
		return plural(h, "hour")
	case m > 0 && s > 0:
		return plural(m, "minute") + " " + plural(s, "second")
	case m > 0:
		return plural(m, "minute")
	}
	return plural(s, "second")
}

// groupDigits writes an integer with thousands separators: 1,042.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatPorts lists up to ten ports: "22, 23, 80 and 5 more" is left to
// the templates; this gives "22, 23, 80, … (+5)".
func formatPorts(ps []uint16) string {
	const show = 10
	var b strings.Builder
	for i, p := range ps {
		if i == show {
			fmt.Fprintf(&b, ", … (+%d)", len(ps)-show)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(int(p)))
	}
	return b.String()
}

// kind sorts finding types into the groups the templates give advice for.
func kind(typ string) string {
	name := typ
	if i := strings.LastIndexByte(typ, '/'); i >= 0 {
		name = typ[i+1:]
	}
	switch {
	case name == "Portscan", name == "MassIPScan", name == "RepeatedReject":
		return "scan"
	case name == "PortProbeUnprotectedPort":
		return "probe"
	case name == "SSHBruteForce", name == "RDPBruteForce", strings.HasSuffix(name, "BruteForce"):
		return "bruteforce"
	case strings.HasPrefix(name, "DenialOfService"):
		return "dos"
	case name == "InboundFlood":
		return "flood"
	case name == "TrafficVolumeUnusual", strings.HasPrefix(typ, "Exfiltration:"):
		return "volume"
	case name == "NetworkPortUnusual":
		return "port"
	case strings.HasPrefix(name, "MaliciousIPCaller"), name == "TorIPCaller", strings.HasPrefix(name, "TorClient"):
		return "threat"
	case strings.HasPrefix(typ, "Policy:"):
		return "policy"
	}
	return "other"
}

func maxSeverity(evs []respond.Event) float64 {
	m := 0.0
	for _, e := range evs {
		if e.Finding != nil && e.Finding.Severity > m {
			m = e.Finding.Severity
		}
	}
	return m
}

// countLevels gives the number of findings per level, highest first, as
// [high, medium, low].
func countLevels(evs []respond.Event) []int {
	c := []int{0, 0, 0}
	for _, e := range evs {
		if e.Finding == nil {
			continue
		}
		switch finding.Level(e.Finding.Severity) {
		case "High":
			c[0]++
		case "Medium":
			c[1]++
		default:
			c[2]++
		}
	}
	return c
}

func countKind(evs []respond.Event, findings bool) int {
	n := 0
	for _, e := range evs {
		if (e.Finding != nil) == findings && (findings || e.Alarm != nil) {
			n++
		}
	}
	return n
}

func actionsFor(as []Action, id string) []Action {
	var out []Action
	for _, a := range as {
		if a.FindingID == id {
			out = append(out, a)
		}
	}
	return out
}
