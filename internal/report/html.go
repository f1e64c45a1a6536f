package report

import (
	"bufio"
	"cmp"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/query"
	"github.com/flowguard/flowguard/internal/store"
)

// Report is what one report shows.
type Report struct {
	Generated time.Time
	// Inputs name what was read (files, s3:// URLs).
	Inputs []string
	// Bin is the time bin of the tables over time.
	Bin time.Duration
	// Tables are the computed traffic tables, in Specs order.
	Tables []Result
	// Findings and Blocks are those of the period.
	Findings []finding.Finding
	Blocks   []store.BlockRecord
	// FindingsFrom says where the findings come from ("detection over
	// the inputs", "the store at PATH").
	FindingsFrom string
	// Skipped counts the lines that could not be read.
	Skipped int64
}

// Table returns the named table, or nil.
func (r *Report) Table(name string) *query.Table {
	for _, t := range r.Tables {
		if t.Name == name {
			return t.Table
		}
	}
	return nil
}

// Period returns the first and last time bin of the traffic table.
func (r *Report) Period() (from, to time.Time, ok bool) {
	t := r.Table("traffic")
	if t == nil {
		return
	}
	c := t.Column("time")
	for _, row := range t.Rows {
		if c < 0 || row[c].T != query.TTime {
			continue
		}
		at := time.UnixMilli(row[c].I).UTC()
		if !ok || at.Before(from) {
			from = at
		}
		if !ok || at.After(to) {
			to = at
		}
		ok = true
	}
	return from, to.Add(r.Bin), ok
}

// chart geometry, in SVG user units.
const (
	chartW, chartH                   = 760, 220
	padL, padR, padT, padB           = 64, 12, 12, 28
	barRowH                          = 18
	barLabelW                        = 250
	maxBars                          = 15
	seriesAccept, seriesReject, othr = "#0b57d0", "#b3261e", "#6b6b6b"
)

// TimeChart draws a table with a time column as one line per series (the
// values of seriesCol, or one series when it is ""), valueCol on the y
// axis; every point is a circle.
func TimeChart(t *query.Table, seriesCol, valueCol, title string) template.HTML {
	tc, vc, sc := t.Column("time"), t.Column(valueCol), -1
	if seriesCol != "" {
		sc = t.Column(seriesCol)
	}
	type pt struct {
		t int64
		v float64
	}
	series := map[string][]pt{}
	var names []string
	var t0, t1 int64 = math.MaxInt64, math.MinInt64
	vmax := 0.0
	for _, row := range t.Rows {
		if tc < 0 || vc < 0 || row[tc].T != query.TTime {
			continue
		}
		v, ok := row[vc].Float()
		if !ok {
			continue
		}
		name := valueCol
		if sc >= 0 {
			name = row[sc].String()
			if name == "" {
				name = "no data"
			}
		}
		if _, seen := series[name]; !seen {
			names = append(names, name)
		}
		series[name] = append(series[name], pt{row[tc].I, v})
		t0, t1, vmax = min(t0, row[tc].I), max(t1, row[tc].I), max(vmax, v)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg"><title>%s</title>`,
		chartW, chartH, template.HTMLEscapeString(title), template.HTMLEscapeString(title))
	if len(names) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">no data in this period</text></svg>`, chartW/2, chartH/2)
		return template.HTML(b.String())
	}
	if vmax == 0 {
		vmax = 1
	}
	x := func(ms int64) float64 {
		if t1 == t0 {
			return float64(padL+chartW-padR) / 2
		}
		return padL + float64(ms-t0)/float64(t1-t0)*float64(chartW-padL-padR)
	}
	y := func(v float64) float64 { return padT + (1-v/vmax)*float64(chartH-padT-padB) }
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/><line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`,
		padL, chartH-padB, chartW-padR, chartH-padB, padL, padT, padL, chartH-padB)
	for _, f := range []float64{0, 0.5, 1} {
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-4, y(vmax*f)+4, humanNum(vmax*f))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text><text x="%d" y="%d" text-anchor="end">%s</text>`,
		padL, chartH-8, time.UnixMilli(t0).UTC().Format("2006-01-02 15:04"), chartW-padR, chartH-8, time.UnixMilli(t1).UTC().Format("2006-01-02 15:04"))
	for i, name := range names {
		pts := series[name]
		slices.SortFunc(pts, func(a, b pt) int { return cmp.Compare(a.t, b.t) })
		color := seriesColor(name, i)
		b.WriteString(`<polyline fill="none" stroke-width="2" stroke="` + color + `" data-series="` + template.HTMLEscapeString(name) + `" points="`)
		for _, p := range pts {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(p.t), y(p.v))
		}
		b.WriteString(`"/>`)
		for _, p := range pts {
			fmt.Fprintf(&b, `<circle class="pt" cx="%.1f" cy="%.1f" r="2" fill="%s" data-value="%g"><title>%s %s: %s</title></circle>`,
				x(p.t), y(p.v), color, p.v, template.HTMLEscapeString(name), time.UnixMilli(p.t).UTC().Format("15:04"), humanNum(p.v))
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" style="fill:%s" class="legend">■ %s</text>`, chartW/2-120+90*i, chartH-8, color, template.HTMLEscapeString(name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func seriesColor(name string, i int) string {
	switch name {
	case "ACCEPT":
		return seriesAccept
	case "REJECT", "rejects":
		return seriesReject
	}
	if i == 0 {
		return seriesAccept
	}
	return othr
}

// BarChart draws the first rows of a table as horizontal bars of
// valueCol, labelled by the other key columns.
func BarChart(t *query.Table, labelCols []string, valueCol, title string) template.HTML {
	vc := t.Column(valueCol)
	rows := t.Rows[:min(len(t.Rows), maxBars)]
	vmax := 0.0
	for _, r := range rows {
		if v, ok := r[vc].Float(); ok {
			vmax = max(vmax, v)
		}
	}
	h := padT + len(rows)*barRowH + 8
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart bars" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg"><title>%s</title>`,
		chartW, max(h, 40), template.HTMLEscapeString(title), template.HTMLEscapeString(title))
	if len(rows) == 0 || vc < 0 {
		b.WriteString(`<text x="10" y="24">no data in this period</text></svg>`)
		return template.HTML(b.String())
	}
	if vmax == 0 {
		vmax = 1
	}
	for i, r := range rows {
		var label []string
		for _, c := range labelCols {
			if ci := t.Column(c); ci >= 0 {
				label = append(label, r[ci].String())
			}
		}
		v, _ := r[vc].Float()
		yy := padT + i*barRowH
		w := v / vmax * float64(chartW-barLabelW-90)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, barLabelW-6, yy+12, template.HTMLEscapeString(query.EscapeText(strings.Join(label, " → "))))
		fmt.Fprintf(&b, `<rect class="bar" x="%d" y="%d" width="%.1f" height="%d" fill="%s" data-value="%g"/>`, barLabelW, yy+2, max(w, 1), barRowH-5, seriesAccept, v)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`, float64(barLabelW)+max(w, 1)+4, yy+12, humanNum(v))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// humanNum writes 1234567 as 1.23M.
func humanNum(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e12:
		return strconv.FormatFloat(v/1e12, 'f', 2, 64) + "T"
	case a >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', 2, 64) + "G"
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case a == math.Trunc(a):
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// section is one table of the page.
type section struct {
	Name, Title string
	Chart       template.HTML
	Names       []string
	Rows        [][]string
	Numeric     []bool
}

func tableSection(res Result) section {
	t := res.Table
	s := section{Name: res.Name, Title: res.Title, Names: t.Names, Numeric: make([]bool, len(t.Names))}
	for i, ty := range t.Types {
		s.Numeric[i] = ty == query.TInt || ty == query.TFloat
	}
	for _, row := range t.Rows {
		cells := make([]string, len(row))
		for i, v := range row {
			cells[i] = query.EscapeText(v.String())
		}
		s.Rows = append(s.Rows, cells)
	}
	switch res.Name {
	case "traffic":
		s.Chart = TimeChart(t, "action", "records", res.Title)
	case "rejected":
		s.Chart = TimeChart(t, "", "rejects", res.Title)
	case "rejected_sources":
		s.Chart = BarChart(t, []string{"srcAddr"}, "rejects", res.Title)
	case "top_talkers":
		s.Chart = BarChart(t, []string{"srcAddr", "dstAddr"}, "bytes", res.Title)
	default:
		if len(t.Names) > 0 {
			s.Chart = BarChart(t, t.Names[len(t.Names)-1:], "flows", res.Title)
		}
	}
	return s
}

// Render writes the report as one HTML file: inline CSS, inline SVG
// charts, no script and nothing fetched from elsewhere.
func Render(w io.Writer, r *Report) error {
	data := struct {
		*Report
		From, To, Bin string
		Sections      []section
		Findings      []findingRow
		Blocks        []store.BlockRecord
	}{Report: r, Blocks: r.Blocks, Bin: binString(r.Bin)}
	if from, to, ok := r.Period(); ok {
		data.From, data.To = from.Format("2006-01-02 15:04"), to.Format("2006-01-02 15:04")
	}
	for _, t := range r.Tables {
		data.Sections = append(data.Sections, tableSection(t))
	}
	data.Findings = findingRows(r.Findings)
	bw := bufio.NewWriter(w)
	if err := page.Execute(bw, data); err != nil {
		return fmt.Errorf("cannot write the report: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("cannot write the report: %w", err)
	}
	return nil
}

type findingRow struct {
	Severity, Level, Type, Title, Actor, Target, Count, FirstSeen, LastSeen, State string
}

func findingRows(fs []finding.Finding) []findingRow {
	fs = slices.Clone(fs)
	slices.SortStableFunc(fs, func(a, b finding.Finding) int {
		return cmp.Or(cmp.Compare(b.Severity, a.Severity), b.LastSeen.Compare(a.LastSeen))
	})
	out := make([]findingRow, len(fs))
	for i, f := range fs {
		state := "active"
		if f.Archived {
			state = "archived"
		}
		out[i] = findingRow{strconv.FormatFloat(f.Severity, 'f', 1, 64), finding.Level(f.Severity), f.Type, query.EscapeText(f.Title),
			addr(f.Actor.IP.String(), f.Actor.IP.IsValid()), addr(f.Target.IP.String(), f.Target.IP.IsValid()), strconv.FormatInt(f.Count, 10),
			f.FirstSeen.UTC().Format(time.RFC3339), f.LastSeen.UTC().Format(time.RFC3339), state}
	}
	return out
}

func addr(s string, ok bool) string {
	if !ok {
		return ""
	}
	return s
}

// WriteCSV writes each table, the findings and the blocks as NAME.csv in
// dir (made if missing), with the numbers the report shows.
func WriteCSV(dir string, r *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot make %s: %w", dir, err)
	}
	for _, t := range r.Tables {
		if err := writeFile(filepath.Join(dir, t.Name+".csv"), func(w io.Writer) error { return query.WriteCSV(w, t.Table) }); err != nil {
			return err
		}
	}
	find := &query.Table{Names: []string{"severity", "level", "type", "title", "actor", "target", "count", "first_seen", "last_seen", "state"}}
	for _, f := range findingRows(r.Findings) {
		find.Rows = append(find.Rows, strs(f.Severity, f.Level, f.Type, f.Title, f.Actor, f.Target, f.Count, f.FirstSeen, f.LastSeen, f.State))
	}
	if err := writeFile(filepath.Join(dir, "findings.csv"), func(w io.Writer) error { return query.WriteCSV(w, find) }); err != nil {
		return err
	}
	blk := &query.Table{Names: []string{"prefix", "target", "rule_number", "state", "finding_id", "reason", "created", "expires"}}
	for _, b := range r.Blocks {
		blk.Rows = append(blk.Rows, strs(b.Prefix.String(), b.Target, strconv.Itoa(int(b.RuleNumber)), string(b.State), b.FindingID, b.Reason,
			b.Created.UTC().Format(time.RFC3339), b.Expires.UTC().Format(time.RFC3339)))
	}
	return writeFile(filepath.Join(dir, "blocks.csv"), func(w io.Writer) error { return query.WriteCSV(w, blk) })
}

func strs(ss ...string) []query.Value {
	out := make([]query.Value, len(ss))
	for i, s := range ss {
		out[i] = query.StringValue(s)
	}
	return out
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	werr := write(f)
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr != nil {
		return fmt.Errorf("cannot write %s: %w", path, werr)
	}
	return nil
}

var page = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>flowguard report{{if .From}} {{.From}} to {{.To}}{{end}}</title>
<style>
body { margin: 0 auto; max-width: 1100px; padding: 16px 24px 48px; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #d0d4da; padding-bottom: 4px; }
.muted { color: #555; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; margin-top: 8px; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #d0d4da; vertical-align: top; }
th { background: #e9ecf0; } td.num, th.num { text-align: right; }
svg.chart { width: 100%; height: auto; display: block; background: #f5f6f8; border: 1px solid #d0d4da; border-radius: 6px; }
svg.chart text { font-size: 11px; fill: #444; } svg.chart .axis { stroke: #b0b4ba; } svg.chart .legend { font-size: 12px; font-weight: 600; }
details summary { cursor: pointer; color: #0b57d0; margin-top: 6px; }
.sev { color: #fff; padding: 0 6px; border-radius: 3px; font-weight: 600; }
.High { background: #9c1d14; } .Medium { background: #8a5300; } .Low { background: #3b5b8c; }
@media print { details { display: block; } }
</style>
</head>
<body>
<header>
<h1>flowguard report</h1>
<p class="muted">{{if .From}}Traffic from {{.From}} to {{.To}} UTC, in bins of {{$.Bin}}. {{end}}Generated {{.Generated.UTC.Format "2006-01-02 15:04:05"}} UTC from {{len .Inputs}} input(s){{if .Skipped}}; {{.Skipped}} line(s) could not be read and were skipped{{end}}.</p>
</header>
<main>
{{range .Sections}}{{$s := .}}
<section id="{{.Name}}">
<h2>{{.Title}}</h2>
{{.Chart}}
<details{{if le (len .Rows) 20}} open{{end}}><summary>{{len .Rows}} row(s) — also in {{.Name}}.csv</summary>
<table><thead><tr>{{range $i, $n := .Names}}<th scope="col"{{if index $s.Numeric $i}} class="num"{{end}}>{{$n}}</th>{{end}}</tr></thead>
<tbody>{{range .Rows}}<tr>{{range $i, $c := .}}<td{{if index $s.Numeric $i}} class="num"{{end}}>{{$c}}</td>{{end}}</tr>{{end}}</tbody></table>
</details>
</section>
{{end}}
<section id="findings">
<h2>Findings in the period</h2>
<p class="muted">From {{.FindingsFrom}}.</p>
{{if .Findings}}<table><thead><tr><th>severity</th><th>type</th><th>finding</th><th>actor</th><th>target</th><th class="num">count</th><th>first seen</th><th>last seen</th><th>state</th></tr></thead><tbody>
{{range .Findings}}<tr><td><span class="sev {{.Level}}">{{.Level}} {{.Severity}}</span></td><td>{{.Type}}</td><td>{{.Title}}</td><td>{{.Actor}}</td><td>{{.Target}}</td><td class="num">{{.Count}}</td><td>{{.FirstSeen}}</td><td>{{.LastSeen}}</td><td>{{.State}}</td></tr>
{{end}}</tbody></table>{{else}}<p>No finding.</p>{{end}}
</section>
<section id="blocks">
<h2>Blocks in the period</h2>
{{if .Blocks}}<table><thead><tr><th>address</th><th>where</th><th>state</th><th>finding</th><th>created</th><th>expires</th></tr></thead><tbody>
{{range .Blocks}}<tr><td>{{.Prefix}}</td><td>{{.Target}}{{if .RuleNumber}} rule {{.RuleNumber}}{{end}}</td><td>{{.State}}</td><td>{{.FindingID}}</td><td>{{.Created.UTC.Format "2006-01-02 15:04"}}</td><td>{{.Expires.UTC.Format "2006-01-02 15:04"}}</td></tr>
{{end}}</tbody></table>{{else}}<p>No block{{if not .Blocks}} (blocks are read from the store: --db){{end}}.</p>{{end}}
</section>
</main>
</body>
</html>
`))
