package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
)

// WriteFindings writes findings as the JSON array that flowguard detect
// --output json prints and GET /api/v1/findings serves (never null).
func WriteFindings(w io.Writer, fs []finding.Finding) error {
	if fs == nil {
		fs = []finding.Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(fs); err != nil {
		return fmt.Errorf("cannot write findings: %w", err)
	}
	return nil
}

// findingFilter reads the list's query parameters: type (a type or a
// prefix), actor and target (addresses or CIDR blocks), min_severity,
// archived (no, yes, all), since (1h, 7d or RFC 3339), limit.
func (s *Server) findingFilter(r *http.Request) (finding.Filter, []string, error) {
	q := r.URL.Query()
	var fl finding.Filter
	for _, t := range q["type"] {
		if !strings.HasSuffix(t, "*") {
			t += "*"
		}
		fl.Types = append(fl.Types, t)
	}
	for _, a := range q["actor"] {
		p, err := CanonicalPrefix(a)
		if err != nil {
			return fl, nil, fmt.Errorf("actor: %w", err)
		}
		fl.Actors = append(fl.Actors, p)
	}
	if v := q.Get("min_severity"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fl, nil, fmt.Errorf("min_severity %q: not a number", v)
		}
		fl.MinSeverity = f
	}
	a, err := finding.ParseArchivedFilter(q.Get("archived"))
	if err != nil {
		return fl, nil, err
	}
	fl.Archived = a
	if fl.Since, err = parseSince(q.Get("since"), s.now()); err != nil {
		return fl, nil, err
	}
	if v := q.Get("limit"); v != "" {
		if fl.Limit, err = strconv.Atoi(v); err != nil || fl.Limit < 0 {
			return fl, nil, fmt.Errorf("limit %q: not a count", v)
		}
	}
	var targets []string
	for _, t := range q["target"] {
		p, err := CanonicalPrefix(t)
		if err != nil {
			return fl, nil, fmt.Errorf("target: %w", err)
		}
		targets = append(targets, p.String())
	}
	return fl, targets, nil
}

func (s *Server) listFindings(w http.ResponseWriter, r *http.Request) {
	fl, targets, err := s.findingFilter(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	fs, err := s.b.Store().ListFindings(r.Context(), fl)
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	if len(targets) > 0 {
		kept := fs[:0]
		for _, f := range fs {
			for _, t := range targets {
				if p, _ := CanonicalPrefix(t); f.Target.IP.IsValid() && p.Contains(f.Target.IP.Unmap()) {
					kept = append(kept, f)
					break
				}
			}
		}
		fs = kept
	}
	w.Header().Set("Content-Type", "application/json")
	_ = WriteFindings(w, fs)
}

// resolve finds the finding an id (or an unambiguous prefix) names.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := s.b.Store().ResolveID(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		fail(w, http.StatusNotFound, "%v", err)
		return "", false
	}
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return "", false
	}
	return id, true
}

// finding loads the finding the path's id (or prefix) names; it answers
// the request itself when it cannot.
func (s *Server) finding(w http.ResponseWriter, r *http.Request) (finding.Finding, bool) {
	id, ok := s.resolve(w, r)
	if !ok {
		return finding.Finding{}, false
	}
	return s.reload(w, r, id)
}

// reload reads a finding as it is now stored, answering 500 when it
// cannot.
func (s *Server) reload(w http.ResponseWriter, r *http.Request, id string) (finding.Finding, bool) {
	f, err := s.b.Store().GetFinding(r.Context(), id)
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return f, false
	}
	return f, true
}

// getFinding serves a finding with its history and its explanation: the
// rule, thresholds and sample records the daemon recorded, and the text
// flowguard detect --explain prints of it.
func (s *Server) getFinding(w http.ResponseWriter, r *http.Request) {
	f, ok := s.finding(w, r)
	if !ok {
		return
	}
	h, err := s.b.Store().FindingHistory(r.Context(), f.ID)
	if err == nil && h == nil {
		h = []store.HistoryEntry{}
	}
	var raw []byte
	if err == nil {
		raw, err = s.b.Store().Explanation(r.Context(), f.ID)
	}
	var ex explained
	if err == nil {
		ex, err = explain(&f, raw)
	}
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		finding.Finding
		History     []store.HistoryEntry `json:"history"`
		Explanation explained            `json:"explanation"`
	}{f, h, ex})
}

func (s *Server) archive(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.resolve(w, r)
		if !ok {
			return
		}
		st := s.b.Store()
		var err error
		action := "archive"
		if on {
			_, err = st.Archive(r.Context(), id)
		} else {
			action = "unarchive"
			_, err = st.Unarchive(r.Context(), id)
		}
		if err == nil {
			_, err = st.AppendAudit(r.Context(), store.AuditEntry{Action: action, FindingID: id, Subject: "api", Detail: []byte(`{"by":"api"}`)})
		}
		if err != nil {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		if f, ok := s.reload(w, r, id); ok {
			writeJSON(w, http.StatusOK, f)
		}
	}
}

func (s *Server) feedback(w http.ResponseWriter, r *http.Request) {
	id, ok := s.resolve(w, r)
	if !ok {
		return
	}
	var body struct {
		Value string `json:"value"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		fail(w, http.StatusBadRequest, "body: %v (want {\"value\": %q or %q})", err, finding.Useful, finding.NotUseful)
		return
	}
	v := strings.ToUpper(strings.TrimSpace(body.Value))
	if err := s.b.Store().SetFeedback(r.Context(), id, v); err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	if f, ok := s.reload(w, r, id); ok {
		writeJSON(w, http.StatusOK, f)
	}
}
