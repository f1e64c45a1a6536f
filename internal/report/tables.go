// Package report computes the traffic tables that the dashboard and
// flowguard report show, with the query engine (internal/query), and
// renders them as one self-contained HTML file with inline SVG charts and
// as CSV files.
package report

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/query"
)

// Spec is one table: a Logs Insights query and how to show it.
type Spec struct {
	// Name is the table's identifier: a JSON key and a CSV file name.
	Name string
	// Title heads the table in the dashboard and the report.
	Title string
	// Query is the Logs Insights query; {bin} stands for the time bin.
	Query string
	// Chart says how the report draws it: "time" (a line over time) or
	// "bar" (horizontal bars of the first numeric column).
	Chart string
}

// Specs are the tables, in the order the report shows them.
var Specs = []Spec{
	{Name: "traffic", Title: "Records per time bin, by action", Chart: "time",
		Query: `stats count(*) as records, sum(bytes) as bytes by bin({bin}) as time, action | sort time asc`},
	{Name: "rejected", Title: "Rejected traffic over time", Chart: "time",
		Query: `filter action = "REJECT" | stats count(*) as rejects by bin({bin}) as time | sort time asc`},
	{Name: "rejected_sources", Title: "Top rejected sources", Chart: "bar",
		Query: `filter action = "REJECT" | stats count(*) as rejects, count_distinct(dstPort) as ports by srcAddr | sort rejects desc | limit 20`},
	{Name: "top_talkers", Title: "Top talkers (bytes)", Chart: "bar",
		Query: `stats sum(bytes) as bytes, count(*) as flows by srcAddr, dstAddr | sort bytes desc | limit 20`},
	{Name: "sources", Title: "Traffic by source address", Chart: "bar",
		Query: `stats count(*) as flows, sum(bytes) as bytes by srcAddr | sort flows desc | limit 20`},
	{Name: "dst_ports", Title: "Traffic by destination port", Chart: "bar",
		Query: `stats count(*) as flows, sum(bytes) as bytes by dstPort | sort flows desc | limit 20`},
	{Name: "protocols", Title: "Traffic by protocol", Chart: "bar",
		Query: `stats count(*) as flows, sum(bytes) as bytes by protocol | sort flows desc | limit 20`},
	{Name: "interfaces", Title: "Traffic by network interface", Chart: "bar",
		Query: `stats count(*) as flows, sum(bytes) as bytes by interfaceId | sort flows desc | limit 20`},
}

// SpecByName returns the spec of a table.
func SpecByName(name string) (Spec, bool) {
	for _, s := range Specs {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

// Source returns the spec's query with the time bin filled in.
func (s Spec) Source(bin time.Duration) string {
	return strings.ReplaceAll(s.Query, "{bin}", binString(bin))
}

// binString writes a bin as Insights does: 1m, 5m, 1h, 30s.
func binString(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", max(int64(d/time.Second), 1))
}

// Result is one computed table.
type Result struct {
	Spec
	Table *query.Table
}

// Progress is told after each table is computed (done of total).
type Progress func(done, total int, name string)

// Options say which tables to compute and how.
type Options struct {
	// Bin is the time bin of the tables over time (default 5m).
	Bin time.Duration
	// Names selects tables by name; empty means all.
	Names []string
	// Since, when set, keeps the records that start at or after it.
	Since time.Time
	// Progress, when set, is told after each table.
	Progress Progress
}

// Compute runs the selected specs over the inputs, one query each, so the
// inputs are read once per table (standard input cannot be). Bad lines go
// to the scanner's error sink (sc.Errors) once: the passes after the
// first drop them.
func Compute(ctx context.Context, sc *flowlog.Scanner, inputs []flowlog.Input, o Options) ([]Result, error) {
	if o.Bin <= 0 {
		o.Bin = 5 * time.Minute
	}
	var specs []Spec
	if len(o.Names) == 0 {
		specs = Specs
	}
	for _, n := range o.Names {
		s, ok := SpecByName(n)
		if !ok {
			return nil, fmt.Errorf("no table %q", n)
		}
		specs = append(specs, s)
	}
	out := make([]Result, 0, len(specs))
	for i, s := range specs {
		src := s.Source(o.Bin)
		if !o.Since.IsZero() {
			src = fmt.Sprintf("filter start >= %d | %s", o.Since.Unix(), src)
		}
		prog, err := query.Compile(src, query.Options{})
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", s.Name, err)
		}
		pass := sc
		if i > 0 {
			again := *sc
			again.Errors = nil
			pass = &again
		}
		t, err := prog.Run(ctx, pass, inputs)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", s.Name, err)
		}
		out = append(out, Result{Spec: s, Table: t})
		if o.Progress != nil {
			o.Progress(i+1, len(specs), s.Name)
		}
	}
	return out, nil
}
