package server

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/query"
	"github.com/flowguard/flowguard/internal/report"
	"github.com/flowguard/flowguard/internal/store"
)

// web holds the dashboard: plain HTML, CSS and JavaScript with no build
// step and nothing fetched from elsewhere (docs/dashboard.md).
//
//go:embed web
var web embed.FS

// dashboardRoutes adds the dashboard at / and the read-only endpoints it
// draws from.
func (s *Server) dashboardRoutes(mux *http.ServeMux) {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	files := http.FileServerFS(sub)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		http.ServeFileFS(w, r, sub, "index.html")
	})
	mux.Handle("GET /ui/", http.StripPrefix("/ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		files.ServeHTTP(w, r)
	})))
	mux.HandleFunc("GET /api/v1/tables", s.tables)
	mux.HandleFunc("GET /api/v1/findings/{id}/flows", s.findingFlows)
	mux.HandleFunc("POST /api/v1/findings/{id}/suppress", s.auth(s.suppress))
	mux.HandleFunc("GET /api/v1/detectors", s.detectors)
}

// detectors serves the detection rules' settings in force, keyed as in
// the configuration file's detectors: section, so that the finding page
// can show the thresholds a finding crossed.
func (s *Server) detectors(w http.ResponseWriter, _ *http.Request) {
	raw, err := yaml.Marshal(s.b.Config().Detectors)
	if err != nil {
		fail(w, http.StatusInternalServerError, "cannot encode the detectors' settings: %v", err)
		return
	}
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		fail(w, http.StatusInternalServerError, "cannot encode the detectors' settings: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// setPageHeaders forbids the dashboard any request to another origin:
// what it shows never leaves the machine.
func setPageHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
}

// Dashboard bounds: the traffic tables have a bin of at least a minute
// (the aggregates' grain) and at most maxBins bins; the finding timeline
// reads files, over at most a day, in bins of at least 10 s.
const (
	minBin       = 10 * time.Second
	maxDashSince = 24 * time.Hour
	maxBins      = 2000
	topRows      = 20
)

// aggregated are the tables the daemon keeps per minute for every source
// (store/traffic.go), with their titles; source_records is the records
// of each of the daemon's sources.
var aggregated = map[string]string{
	"traffic": "", "rejected": "", "rejected_sources": "", "top_talkers": "", "dst_ports": "",
	"source_records": "Records by flowguard source",
}

// tables serves the overview's traffic tables from the daemon's
// per-minute aggregates, which cover every source: the minutes from since
// (default 15m, at most the retention) to now, binned by bin (default
// 1m, a whole number of minutes): ?since=15m&bin=1m&name=traffic.
func (s *Server) tables(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := s.now()
	sinceArg := cmp.Or(q.Get("since"), "15m")
	since, err := parseSince(sinceArg, now)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	bin := time.Minute
	if v := q.Get("bin"); v != "" {
		if bin, err = time.ParseDuration(v); err != nil || bin <= 0 {
			fail(w, http.StatusBadRequest, "bin %q: want a duration such as 1m or 1h", v)
			return
		}
	}
	bin = max(bin.Round(time.Minute), time.Minute)
	since = since.Truncate(time.Minute)
	until := now.Truncate(time.Minute).Add(time.Minute)
	if n := until.Sub(since) / bin; n > maxBins {
		fail(w, http.StatusBadRequest, "since %q with bin %s makes %d bins: give a bin of at least %s", sinceArg, bin, n, (until.Sub(since)/maxBins).Round(time.Minute)+time.Minute)
		return
	}
	names := q["name"]
	if len(names) == 0 {
		names = []string{"traffic", "rejected", "rejected_sources", "top_talkers", "dst_ports", "source_records"}
	}
	out := struct {
		Since       time.Time                  `json:"since"`
		Bin         string                     `json:"bin"`
		Approximate []string                   `json:"approximate"`
		Tables      map[string]json.RawMessage `json:"tables"`
		Titles      map[string]string          `json:"titles"`
	}{since.UTC(), bin.String(), []string{}, map[string]json.RawMessage{}, map[string]string{}}
	for _, n := range names {
		if _, ok := aggregated[n]; !ok {
			fail(w, http.StatusBadRequest, "name %q: no such table here (the daemon keeps traffic, rejected, rejected_sources, top_talkers, dst_ports and source_records; flowguard report computes the others from the logs)", n)
			return
		}
		rows, approx, err := s.table(r.Context(), n, since, until, bin)
		if err != nil {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		js, err := json.Marshal(rows)
		if err != nil {
			fail(w, http.StatusInternalServerError, "cannot write table %s: %v", n, err)
			return
		}
		out.Tables[n] = js
		out.Titles[n] = aggregated[n]
		if spec, ok := report.SpecByName(n); ok {
			out.Titles[n] = spec.Title
		}
		if approx {
			out.Approximate = append(out.Approximate, n)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// table reads one of the aggregated tables as row objects with the
// columns of the report's table of that name; approx says whether the
// minutes kept only their first keys (the top tables).
func (s *Server) table(ctx context.Context, name string, since, until time.Time, bin time.Duration) (rows []map[string]any, approx bool, err error) {
	st := s.b.Store()
	rows = []map[string]any{}
	switch name {
	case "traffic", "rejected":
		bins, err := st.TrafficSeries(ctx, since, until, bin)
		if err != nil {
			return nil, false, err
		}
		for _, b := range bins {
			switch {
			case name == "traffic":
				rows = append(rows, map[string]any{"time": b.Time, "action": b.Action, "records": b.Records, "bytes": b.Bytes})
			case b.Action == "REJECT":
				rows = append(rows, map[string]any{"time": b.Time, "rejects": b.Records})
			}
		}
		return rows, false, nil
	case "source_records":
		cs, err := st.TrafficBySource(ctx, since, until)
		if err != nil {
			return nil, false, err
		}
		by := map[string]map[string]any{}
		for _, c := range cs {
			row := by[c.Source]
			if row == nil {
				row = map[string]any{"source": c.Source, "records": int64(0), "bytes": int64(0), "rejects": int64(0)}
				by[c.Source] = row
				rows = append(rows, row)
			}
			row["records"] = row["records"].(int64) + c.Records
			row["bytes"] = row["bytes"].(int64) + c.Bytes
			if c.Action == "REJECT" {
				row["rejects"] = row["rejects"].(int64) + c.Records
			}
		}
		return rows, false, nil
	}
	kind := map[string]string{"rejected_sources": store.TopRejectedSources, "top_talkers": store.TopTalkers, "dst_ports": store.TopDstPorts}[name]
	tops, err := st.TrafficTops(ctx, kind, since, until, topRows)
	if err != nil {
		return nil, false, err
	}
	for _, t := range tops {
		switch kind {
		case store.TopRejectedSources:
			rows = append(rows, map[string]any{"srcAddr": t.Key, "rejects": t.Count, "ports": t.Ports.Estimate()})
		case store.TopTalkers:
			src, dst, _ := strings.Cut(t.Key, " ")
			rows = append(rows, map[string]any{"srcAddr": src, "dstAddr": dst, "bytes": t.Bytes, "flows": t.Count})
		default:
			port, _ := strconv.Atoi(t.Key)
			rows = append(rows, map[string]any{"dstPort": port, "flows": t.Count, "bytes": t.Bytes})
		}
	}
	return rows, true, nil
}

// tableJSON is a query result as the array of row objects POST query
// answers.
func tableJSON(t *query.Table) (json.RawMessage, error) {
	var b bytes.Buffer
	if err := query.WriteJSON(&b, t); err != nil {
		return nil, fmt.Errorf("cannot write a table: %w", err)
	}
	return json.RawMessage(bytes.TrimSpace(b.Bytes())), nil
}

// findingFlows serves the flows of a finding's actor in the followed
// files: a timeline (flows per time bin by action, about 60 bins) and the
// latest sample records. The period is the finding's first to last seen
// with two minutes either side, or ?since=1h up to now; at most a day
// back.
func (s *Server) findingFlows(w http.ResponseWriter, r *http.Request) {
	f, ok := s.finding(w, r)
	if !ok {
		return
	}
	var err error
	if !f.Actor.IP.IsValid() {
		writeJSON(w, http.StatusOK, struct {
			Timeline []any `json:"timeline"`
			Samples  []any `json:"samples"`
		}{[]any{}, []any{}})
		return
	}
	now := s.now()
	// Some context either side of the activity, in about 60 bins.
	since, until := f.FirstSeen.Add(-2*time.Minute), f.LastSeen.Add(2*time.Minute)
	if v := r.URL.Query().Get("since"); v != "" {
		if since, err = parseSince(v, now); err != nil {
			fail(w, http.StatusBadRequest, "%v", err)
			return
		}
		until = now
	}
	if since.Before(now.Add(-maxDashSince)) {
		since = now.Add(-maxDashSince)
	}
	bin := max(until.Sub(since)/60, minBin).Round(minBin)
	inputs, err := s.recentInputs(since)
	if err != nil {
		fail(w, http.StatusRequestEntityTooLarge, "%v", err)
		return
	}
	// The address comes from the store, where it was parsed: it is safe
	// to write into the query.
	ip := f.Actor.IP.Unmap().String()
	match := fmt.Sprintf(`filter start >= %d and start <= %d and (srcAddr = "%s" or dstAddr = "%s")`, since.Unix(), until.Unix(), ip, ip)
	ctx, cancel := contextWithTimeout(r, queryTimeout)
	defer cancel()
	out := map[string]json.RawMessage{}
	for name, tail := range map[string]string{
		"timeline": fmt.Sprintf("stats count(*) as flows by bin(%ds) as time, action | sort time asc", int(bin.Seconds())),
		"samples":  `fields @timestamp as time, interfaceId, srcAddr, srcPort, dstAddr, dstPort, protocol, packets, bytes, action | sort time desc | limit 20`,
	} {
		prog, err := query.Compile(match+" | "+tail, query.Options{MaxRows: queryMaxRows})
		if err != nil {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		t, err := prog.Run(ctx, &flowlog.Scanner{Errors: &flowlog.Skipped{}}, inputs)
		if err != nil {
			fail(w, http.StatusInternalServerError, "query: %v", err)
			return
		}
		if out[name], err = tableJSON(t); err != nil {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// suppress adds a suppression rule for the finding's type and actor
// (which archives it and every later finding it matches) and audits it.
func (s *Server) suppress(w http.ResponseWriter, r *http.Request) {
	f, ok := s.finding(w, r)
	if !ok {
		return
	}
	id, st := f.ID, s.b.Store()
	rule := finding.SuppressionRule{Name: "dashboard-" + id[:min(len(id), 12)], Types: []string{f.Type},
		Description: "suppressed from the dashboard: " + f.Title}
	if f.Actor.IP.IsValid() {
		rule.Actors = []string{f.Actor.IP.Unmap().String()}
	}
	n, err := st.AddSuppressionRule(r.Context(), rule)
	if err != nil {
		code := http.StatusBadRequest
		if strings.Contains(err.Error(), "already exists") {
			code = http.StatusConflict
		}
		fail(w, code, "%v", err)
		return
	}
	detail, _ := json.Marshal(map[string]any{"by": "api", "rule": rule.Name, "archived": n})
	if _, err := st.AppendAudit(r.Context(), store.AuditEntry{Action: "suppress", FindingID: id, Subject: "api", Detail: detail}); err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Rule     finding.SuppressionRule `json:"rule"`
		Archived int                     `json:"archived"`
	}{rule, n})
}

// contextWithTimeout bounds a request's work.
func contextWithTimeout(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), d)
}
