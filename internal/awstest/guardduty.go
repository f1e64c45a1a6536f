package awstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GuardDuty is a GuardDuty server speaking its REST-JSON protocol for the
// finding operations: ListFindings (POST /detector/{id}/findings),
// GetFindings (…/findings/get), ArchiveFindings (…/findings/archive),
// UnarchiveFindings (…/findings/unarchive) and UpdateFindingsFeedback
// (…/findings/feedback). Findings are kept as GuardDuty's JSON; archive
// and feedback change service.archived, service.userFeedback and
// updatedAt as GuardDuty does.
type GuardDuty struct {
	faults
	URL string

	mu        sync.Mutex
	detectors map[string]map[string]map[string]any // detector → id → finding
	now       func() time.Time
}

// NewGuardDuty starts a GuardDuty server, stopped when the test ends.
func NewGuardDuty(t TB) *GuardDuty {
	t.Helper()
	s := &GuardDuty{detectors: map[string]map[string]map[string]any{}, now: time.Now}
	s.faults.init()
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = srv.URL
	t.Cleanup(srv.Close)
	return s
}

// AddDetector creates a detector with no findings.
func (s *GuardDuty) AddDetector(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.detectors[id] == nil {
		s.detectors[id] = map[string]map[string]any{}
	}
}

// PutFinding adds or replaces a finding, given as GuardDuty's JSON (the
// "detail" of an EventBridge event); its service.detectorId names the
// detector, created if need be.
func (s *GuardDuty) PutFinding(raw []byte) error {
	var f map[string]any
	if err := json.Unmarshal(raw, &f); err != nil {
		return err
	}
	svc, _ := f["service"].(map[string]any)
	det, _ := svc["detectorId"].(string)
	id, _ := f["id"].(string)
	if det == "" || id == "" {
		return fmt.Errorf("finding without id or service.detectorId")
	}
	s.AddDetector(det)
	s.mu.Lock()
	s.detectors[det][id] = f
	s.mu.Unlock()
	return nil
}

// Finding returns a finding's archived flag and feedback, as GuardDuty
// holds them.
func (s *GuardDuty) Finding(detector, id string) (archived bool, feedback string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.detectors[detector][id]
	if !ok {
		return false, "", false
	}
	svc, _ := f["service"].(map[string]any)
	archived, _ = svc["archived"].(bool)
	feedback, _ = svc["userFeedback"].(string)
	return archived, feedback, true
}

type gdError struct {
	status  int
	typ     string
	message string
}

func (s *GuardDuty) writeError(w http.ResponseWriter, e *gdError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", e.typ)
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]string{"__type": e.typ, "message": e.message, "type": "InvalidInputException"})
}

func (s *GuardDuty) serve(w http.ResponseWriter, r *http.Request) {
	if !signed(r) {
		s.writeError(w, &gdError{403, "AccessDeniedException", "Missing Authentication Token"})
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.Method != http.MethodPost || len(parts) < 3 || parts[0] != "detector" || parts[2] != "findings" || len(parts) > 4 {
		s.writeError(w, &gdError{404, "BadRequestException", "unsupported: " + r.Method + " " + r.URL.Path})
		return
	}
	det := parts[1]
	op := "ListFindings"
	if len(parts) == 4 {
		op = map[string]string{"get": "GetFindings", "archive": "ArchiveFindings", "unarchive": "UnarchiveFindings", "feedback": "UpdateFindingsFeedback"}[parts[3]]
		if op == "" {
			s.writeError(w, &gdError{404, "BadRequestException", "unsupported: " + r.URL.Path})
			return
		}
	}
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		s.writeError(w, &gdError{400, "BadRequestException", "The request is rejected because the JSON could not be processed: " + err.Error()})
		return
	}
	handler := map[string]func(string, map[string]any) (any, *gdError){
		"ListFindings": s.list, "GetFindings": s.get, "ArchiveFindings": s.archive,
		"UnarchiveFindings": s.archive, "UpdateFindingsFeedback": s.feedback,
	}[op]
	if op == "UnarchiveFindings" {
		in["_unarchive"] = true
	}
	internal := &gdError{500, "InternalServerErrorException", "The request is rejected because an internal server error occurred."}
	switch s.enter(r.Context(), op) {
	case faultThrottle:
		s.writeError(w, &gdError{429, "TooManyRequestsException", "Rate exceeded"})
		return
	case faultBefore:
		s.writeError(w, internal)
		return
	case faultAfter:
		handler(det, in)
		s.writeError(w, internal)
		return
	}
	out, e := handler(det, in)
	if e != nil {
		s.writeError(w, e)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// detector returns a detector's findings; the caller holds s.mu.
func (s *GuardDuty) detector(id string) (map[string]map[string]any, *gdError) {
	fs, ok := s.detectors[id]
	if !ok {
		return nil, &gdError{400, "BadRequestException", "The request is rejected because the input detectorId is not owned by the current account."}
	}
	return fs, nil
}

func ids(in map[string]any) ([]string, *gdError) {
	raw, _ := in["findingIds"].([]any)
	if len(raw) == 0 || len(raw) > 50 {
		return nil, &gdError{400, "BadRequestException", "The request is rejected because findingIds must hold 1 to 50 ids."}
	}
	out := make([]string, 0, len(raw))
	for _, v := range raw {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out, nil
}

// field reads a dotted attribute of a finding (updatedAt, severity, type,
// service.archived), with times as milliseconds.
func field(f map[string]any, name string) any {
	var v any = f
	for _, p := range strings.Split(name, ".") {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	if s, ok := v.(string); ok && (name == "updatedAt" || name == "createdAt") {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return float64(t.UnixMilli())
		}
	}
	return v
}

// match applies findingCriteria: eq/neq on strings and booleans, and
// gt/gte/lt/lte (also their long names) on numbers and times.
func match(f map[string]any, crit map[string]any) bool {
	for name, c := range crit {
		cond, _ := c.(map[string]any)
		v := field(f, name)
		for op, arg := range cond {
			switch op {
			case "eq", "equals", "neq", "notEquals":
				list, _ := arg.([]any)
				hit := false
				for _, a := range list {
					if fmt.Sprint(a) == fmt.Sprint(v) {
						hit = true
					}
				}
				if hit != (op == "eq" || op == "equals") {
					return false
				}
			default:
				n, _ := v.(float64)
				a, _ := arg.(float64)
				ok := map[string]bool{
					"gt": n > a, "greaterThan": n > a, "gte": n >= a, "greaterThanOrEqual": n >= a,
					"lt": n < a, "lessThan": n < a, "lte": n <= a, "lessThanOrEqual": n <= a,
				}
				if r, known := ok[op]; known && !r {
					return false
				}
			}
		}
	}
	return true
}

func (s *GuardDuty) list(det string, in map[string]any) (any, *gdError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs, e := s.detector(det)
	if e != nil {
		return nil, e
	}
	crit := map[string]any{}
	if fc, ok := in["findingCriteria"].(map[string]any); ok {
		crit, _ = fc["criterion"].(map[string]any)
	}
	var hits []map[string]any
	for _, f := range fs {
		if match(f, crit) {
			hits = append(hits, f)
		}
	}
	attr, desc := "updatedAt", false
	if sc, ok := in["sortCriteria"].(map[string]any); ok {
		if a, _ := sc["attributeName"].(string); a != "" {
			attr = a
		}
		desc = sc["orderBy"] == "DESC"
	}
	slices.SortFunc(hits, func(a, b map[string]any) int {
		x, y := fmt.Sprint(field(a, attr)), fmt.Sprint(field(b, attr))
		if nx, ex := strconv.ParseFloat(x, 64); ex == nil {
			if ny, ey := strconv.ParseFloat(y, 64); ey == nil {
				x, y = fmt.Sprintf("%020.0f", nx), fmt.Sprintf("%020.0f", ny)
			}
		}
		c := strings.Compare(x, y)
		if c == 0 {
			c = strings.Compare(a["id"].(string), b["id"].(string))
		}
		if desc {
			c = -c
		}
		return c
	})
	max := 50
	if m, ok := in["maxResults"].(float64); ok {
		if m < 1 || m > 50 {
			return nil, &gdError{400, "BadRequestException", "The request is rejected because maxResults must be between 1 and 50."}
		}
		max = int(m)
	}
	start := 0
	if tok, _ := in["nextToken"].(string); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(hits) {
			return nil, &gdError{400, "BadRequestException", "The request is rejected because the nextToken is not valid."}
		}
		start = n
	}
	end := min(start+max, len(hits))
	out := map[string]any{"findingIds": []string{}}
	idsOut := []string{}
	for _, f := range hits[start:end] {
		idsOut = append(idsOut, f["id"].(string))
	}
	out["findingIds"] = idsOut
	if end < len(hits) {
		out["nextToken"] = strconv.Itoa(end)
	}
	return out, nil
}

func (s *GuardDuty) get(det string, in map[string]any) (any, *gdError) {
	want, e := ids(in)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fs, e := s.detector(det)
	if e != nil {
		return nil, e
	}
	out := []map[string]any{}
	for _, id := range want {
		if f, ok := fs[id]; ok { // unknown ids are left out, as GuardDuty does
			out = append(out, f)
		}
	}
	return map[string]any{"findings": out}, nil
}

// touch sets a finding's service key and its updatedAt; s.mu is held.
func (s *GuardDuty) touch(f map[string]any, key string, v any) {
	svc, _ := f["service"].(map[string]any)
	if svc == nil {
		svc = map[string]any{}
		f["service"] = svc
	}
	svc[key] = v
	f["updatedAt"] = s.now().UTC().Format("2006-01-02T15:04:05.000Z")
}

func (s *GuardDuty) archive(det string, in map[string]any) (any, *gdError) {
	want, e := ids(in)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fs, e := s.detector(det)
	if e != nil {
		return nil, e
	}
	archived := in["_unarchive"] == nil
	for _, id := range want {
		if f, ok := fs[id]; ok {
			s.touch(f, "archived", archived)
		}
	}
	return map[string]any{}, nil
}

func (s *GuardDuty) feedback(det string, in map[string]any) (any, *gdError) {
	want, e := ids(in)
	if e != nil {
		return nil, e
	}
	fb, _ := in["feedback"].(string)
	if fb != "USEFUL" && fb != "NOT_USEFUL" {
		return nil, &gdError{400, "BadRequestException", "The request is rejected because feedback must be USEFUL or NOT_USEFUL."}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fs, e := s.detector(det)
	if e != nil {
		return nil, e
	}
	for _, id := range want {
		if f, ok := fs[id]; ok {
			s.touch(f, "userFeedback", fb)
		}
	}
	return map[string]any{}, nil
}
