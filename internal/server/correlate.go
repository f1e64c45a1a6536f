package server

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/flowguard/flowguard/internal/guardduty"
)

// correlate serves GET /api/v1/correlate?ip=ADDRESS (or ?resource=ID, an
// instance, interface, user or AWS resource id; since=7d or RFC 3339
// optional): flowguard's flow and CloudTrail findings and GuardDuty's
// about it in one view, with where GuardDuty and flowguard disagree
// (guardduty.Correlation).
func (s *Server) correlate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ip, resource := q.Get("ip"), q.Get("resource")
	subject := resource
	switch {
	case ip != "" && resource != "":
		fail(w, http.StatusBadRequest, "give ip or resource, not both")
		return
	case ip != "":
		a, err := netip.ParseAddr(ip)
		if err != nil {
			fail(w, http.StatusBadRequest, "ip %q: not an IP address", ip)
			return
		}
		subject = a.Unmap().String()
	case resource == "":
		fail(w, http.StatusBadRequest, "give ip=ADDRESS or resource=ID (an instance, interface, user or resource id)")
		return
	}
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := parseSince(v, s.now())
		if err != nil {
			fail(w, http.StatusBadRequest, "%v", err)
			return
		}
		since = t
	}
	c, err := guardduty.Correlate(r.Context(), s.b.Store(), subject, since)
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}
