package server

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
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

// Dashboard bounds: the time bin is at least 10 s and the period at most
// a day, so that a table over time holds at most 8,640 rows per action.
const (
	minBin       = 10 * time.Second
	maxDashSince = 24 * time.Hour
)

// tables serves the traffic tables of internal/report over the records
// of the followed files that start within since (default 15m), binned by
// bin (default 1m): ?since=15m&bin=1m&name=traffic&name=dst_ports.
func (s *Server) tables(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := s.now()
	sinceArg := q.Get("since")
	if sinceArg == "" {
		sinceArg = "15m"
	}
	since, err := parseSince(sinceArg, now)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	if now.Sub(since) > maxDashSince {
		fail(w, http.StatusBadRequest, "since %q: the dashboard's tables cover at most %s; use flowguard report for longer periods", sinceArg, maxDashSince)
		return
	}
	bin := time.Minute
	if v := q.Get("bin"); v != "" {
		if bin, err = time.ParseDuration(v); err != nil || bin < minBin {
			fail(w, http.StatusBadRequest, "bin %q: want a duration of at least %s", v, minBin)
			return
		}
	}
	for _, n := range q["name"] {
		if _, ok := report.SpecByName(n); !ok {
			fail(w, http.StatusBadRequest, "name %q: no such table", n)
			return
		}
	}
	inputs, err := s.recentInputs(since)
	if err != nil {
		fail(w, http.StatusRequestEntityTooLarge, "%v", err)
		return
	}
	ctx, cancel := contextWithTimeout(r, queryTimeout)
	defer cancel()
	skipped := &flowlog.Skipped{}
	res, err := report.Compute(ctx, &flowlog.Scanner{Errors: skipped}, inputs, report.Options{Bin: bin, Names: q["name"], Since: since})
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	out := struct {
		Since   time.Time                  `json:"since"`
		Bin     string                     `json:"bin"`
		Inputs  int                        `json:"inputs"`
		Skipped int64                      `json:"skipped"`
		Tables  map[string]json.RawMessage `json:"tables"`
		Titles  map[string]string          `json:"titles"`
	}{since.UTC(), bin.String(), len(inputs), skipped.Count(), map[string]json.RawMessage{}, map[string]string{}}
	for _, t := range res {
		raw, err := tableJSON(t.Table)
		if err != nil {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		out.Tables[t.Name] = raw
		out.Titles[t.Name] = t.Title
	}
	writeJSON(w, http.StatusOK, out)
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
	id, ok := s.resolve(w, r)
	if !ok {
		return
	}
	f, err := s.b.Store().GetFinding(r.Context(), id)
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
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
	id, ok := s.resolve(w, r)
	if !ok {
		return
	}
	st := s.b.Store()
	f, err := st.GetFinding(r.Context(), id)
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
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
