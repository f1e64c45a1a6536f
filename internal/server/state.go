package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/query"
	"github.com/flowguard/flowguard/internal/respond"
	"github.com/flowguard/flowguard/internal/store"
)

func (s *Server) listBlocks(w http.ResponseWriter, r *http.Request) {
	fl := store.BlockFilter{LiveOnly: r.URL.Query().Get("state") != "all"}
	rows, err := s.b.Store().ListBlocks(r.Context(), fl)
	writeList(w, rows, err)
}

// unblock marks the address's blocks for removal, which the daemon's
// expiry timer carries out, and keeps it from being blocked again for the
// grace period.
func (s *Server) unblock(w http.ResponseWriter, r *http.Request) {
	p, err := CanonicalPrefix(r.PathValue("ip"))
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	var body struct {
		Reason string `json:"reason"`
		By     string `json:"by"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil && err != io.EOF {
			fail(w, http.StatusBadRequest, "body: %v", err)
			return
		}
	}
	if body.By == "" {
		body.By = "api"
	}
	var grace time.Duration
	if c := s.b.Config(); c.Response != nil {
		grace = time.Duration(c.Response.UnbanGrace)
	}
	rows, err := respond.RequestUnblock(r.Context(), s.b.Store(), p, body.By, body.Reason, s.now(), grace)
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	if rows == nil {
		rows = []store.BlockRecord{}
	}
	writeJSON(w, http.StatusAccepted, struct {
		Prefix string              `json:"prefix"`
		Marked []store.BlockRecord `json:"marked"`
	}{p.String(), rows})
}

func (s *Server) alarms(w http.ResponseWriter, r *http.Request) {
	m, err := s.b.Store().LoadAlarmStates(r.Context())
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	out := make([]store.AlarmState, 0, len(m))
	for _, a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b store.AlarmState) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err := parseSince(q.Get("since"), s.now())
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	fl := store.AuditFilter{Since: since, FindingID: q.Get("finding_id"), Action: q.Get("action"), Limit: 1000}
	if v := q.Get("limit"); v != "" {
		if fl.Limit, err = strconv.Atoi(v); err != nil || fl.Limit < 0 {
			fail(w, http.StatusBadRequest, "limit %q: not a count", v)
			return
		}
	}
	es, err := s.b.Store().ListAudit(r.Context(), fl)
	writeList(w, es, err)
}

// Query bounds: a query reads the files the files sources follow (those
// modified within since, default one hour) and the stream data the
// backend keeps (Backend.Recent), at most maxQueryBytes of them, for at
// most queryTimeout.
const (
	maxQueryBytes = 1 << 30
	queryTimeout  = time.Minute
	queryMaxRows  = 10000
)

func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Query string `json:"query"`
		Since string `json:"since"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		fail(w, http.StatusBadRequest, "body: %v (want {\"query\": \"...\", \"since\": \"1h\"})", err)
		return
	}
	if body.Since == "" {
		body.Since = "1h"
	}
	since, err := parseSince(body.Since, s.now())
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	prog, err := query.Compile(body.Query, query.Options{MaxRows: queryMaxRows})
	if err != nil {
		fail(w, http.StatusBadRequest, "query: %v", err)
		return
	}
	inputs, err := s.recentInputs(since)
	if err != nil {
		fail(w, http.StatusRequestEntityTooLarge, "%v", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	skipped := &flowlog.Skipped{}
	t, err := prog.Run(ctx, &flowlog.Scanner{Errors: skipped}, inputs)
	if err != nil {
		fail(w, http.StatusInternalServerError, "query: %v", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Flowguard-Inputs", strconv.Itoa(len(inputs)))
	w.Header().Set("X-Flowguard-Skipped", strconv.FormatInt(skipped.Count(), 10))
	_ = query.Write(w, "json", t)
}
