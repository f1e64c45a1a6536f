package awstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// WAFv2 is a test server speaking WAFv2's JSON 1.1 protocol
// (`X-Amz-Target: AWSWAF_20190729.<Operation>`) for IP sets: GetIPSet,
// UpdateIPSet, ListIPSets. UpdateIPSet replaces the whole address list and
// needs the current LockToken (WAFOptimisticLockException otherwise); a
// set holds at most 10,000 addresses (WAFLimitsExceededException); unknown
// sets answer WAFNonexistentItemException.
type WAFv2 struct {
	faults
	// URL is the server's endpoint, for BaseEndpoint.
	URL string

	mu     sync.Mutex
	sets   map[string]*IPSet // by scope + "/" + id
	tokens int
	// conflicts makes the next n UpdateIPSet calls meet a concurrent
	// writer: the lock token changes just before the call is checked.
	conflicts int
	limit     int
}

// IPSet is an IP set as the server holds it.
type IPSet struct {
	Scope, Name, ID, Description string
	Version                      string // IPV4 or IPV6
	Addresses                    []string
	LockToken                    string
}

// NewWAFv2 starts a WAFv2 server, stopped when the test ends.
func NewWAFv2(t TB) *WAFv2 {
	t.Helper()
	s := &WAFv2{sets: map[string]*IPSet{}, limit: 10000}
	s.faults.init()
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = srv.URL
	t.Cleanup(srv.Close)
	return s
}

// SetLimit changes the addresses-per-set limit (10,000 in AWS), so that
// tests can fill a set quickly.
func (s *WAFv2) SetLimit(n int) {
	s.mu.Lock()
	s.limit = n
	s.mu.Unlock()
}

func (s *WAFv2) nextToken() string {
	s.tokens++
	return fmt.Sprintf("%08x-aaaa-4bbb-8ccc-%012x", s.tokens, s.tokens*7919)
}

// CreateIPSet creates a set (scope REGIONAL or CLOUDFRONT, version IPV4 or
// IPV6) and returns its id.
func (s *WAFv2) CreateIPSet(scope, name, version string, addrs ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := fmt.Sprintf("%08x-1111-4222-8333-%012x", len(s.sets)+1, len(s.sets)+1)
	s.sets[scope+"/"+id] = &IPSet{Scope: scope, Name: name, ID: id, Version: version, Addresses: slices.Clone(addrs), LockToken: s.nextToken()}
	return id
}

// Addresses returns a copy of a set's addresses, sorted.
func (s *WAFv2) Addresses(scope, id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.sets[scope+"/"+id]
	if set == nil {
		return nil
	}
	out := slices.Clone(set.Addresses)
	slices.Sort(out)
	return out
}

// SetAddresses replaces a set's addresses directly, as someone else would
// (the lock token changes).
func (s *WAFv2) SetAddresses(scope, id string, addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.sets[scope+"/"+id]
	set.Addresses = slices.Clone(addrs)
	set.LockToken = s.nextToken()
}

// Conflict makes the next n UpdateIPSet calls fail as if another writer
// had updated the set since the caller read it.
func (s *WAFv2) Conflict(n int) {
	s.mu.Lock()
	s.conflicts = n
	s.mu.Unlock()
}

type wafError struct {
	status  int
	typ     string
	message string
}

func (s *WAFv2) serve(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "AWSWAF_20190729.")
	if r.Method != http.MethodPost || !ok {
		s.writeError(w, &wafError{400, "UnknownOperationException", "unknown target " + target})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		s.writeError(w, &wafError{400, "SerializationException", "Content-Type must be application/x-amz-json-1.1, not " + ct})
		return
	}
	if !signed(r) {
		s.writeError(w, &wafError{403, "MissingAuthenticationTokenException", "Missing Authentication Token"})
		return
	}
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		s.writeError(w, &wafError{400, "SerializationException", err.Error()})
		return
	}
	var handler func(map[string]any) (any, *wafError)
	switch op {
	case "GetIPSet":
		handler = s.getIPSet
	case "UpdateIPSet":
		handler = s.updateIPSet
	case "ListIPSets":
		handler = s.listIPSets
	default:
		s.writeError(w, &wafError{400, "UnknownOperationException", "unsupported operation " + op})
		return
	}
	switch s.enter(r.Context(), op) {
	case faultThrottle:
		// The generic AWS JSON-protocol throttling answer, which the
		// SDK's standard retryer also treats as throttling.
		s.writeError(w, &wafError{400, "ThrottlingException", "Rate exceeded"})
		return
	case faultBefore:
		s.writeError(w, &wafError{500, "WAFInternalErrorException", "Your request is valid, but WAF couldn't perform the operation because of a system problem. Retry your request."})
		return
	case faultAfter:
		handler(in)
		s.writeError(w, &wafError{500, "WAFInternalErrorException", "Your request is valid, but WAF couldn't perform the operation because of a system problem. Retry your request."})
		return
	}
	out, e := handler(in)
	if e != nil {
		s.writeError(w, e)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

func (s *WAFv2) writeError(w http.ResponseWriter, e *wafError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.typ)
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.wafv2#" + e.typ, "Message": e.message})
}

func str(in map[string]any, k string) string {
	v, _ := in[k].(string)
	return v
}

func (s *WAFv2) lookup(in map[string]any) (*IPSet, *wafError) {
	scope, id, name := str(in, "Scope"), str(in, "Id"), str(in, "Name")
	if scope != "REGIONAL" && scope != "CLOUDFRONT" {
		return nil, &wafError{400, "WAFInvalidParameterException", fmt.Sprintf("Error reason: The parameter contains formatting that is not valid., field: SCOPE_VALUE, parameter: %s", scope)}
	}
	set := s.sets[scope+"/"+id]
	if set == nil || set.Name != name {
		return nil, &wafError{400, "WAFNonexistentItemException", "WAF couldn't perform the operation because your resource doesn't exist."}
	}
	return set, nil
}

func (s *WAFv2) getIPSet(in map[string]any) (any, *wafError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set, e := s.lookup(in)
	if e != nil {
		return nil, e
	}
	addrs := set.Addresses
	if addrs == nil {
		addrs = []string{}
	}
	return map[string]any{
		"IPSet": map[string]any{
			"Name": set.Name, "Id": set.ID, "Description": set.Description,
			"ARN":              fmt.Sprintf("arn:aws:wafv2:%s:123456789012:%s/ipset/%s/%s", Region, strings.ToLower(set.Scope), set.Name, set.ID),
			"IPAddressVersion": set.Version, "Addresses": addrs,
		},
		"LockToken": set.LockToken,
	}, nil
}

func (s *WAFv2) updateIPSet(in map[string]any) (any, *wafError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set, e := s.lookup(in)
	if e != nil {
		return nil, e
	}
	raw, ok := in["Addresses"].([]any)
	if !ok {
		return nil, &wafError{400, "WAFInvalidParameterException", "Error reason: A required field is missing., field: ADDRESSES"}
	}
	if s.conflicts > 0 {
		s.conflicts--
		set.LockToken = s.nextToken()
	}
	if str(in, "LockToken") != set.LockToken {
		return nil, &wafError{400, "WAFOptimisticLockException", "AWS WAF couldn’t save your changes because someone changed the resource after you started to edit it. Reapply your changes."}
	}
	addrs := make([]string, 0, len(raw))
	for _, v := range raw {
		a, _ := v.(string)
		p, err := netip.ParsePrefix(a)
		if err != nil || p.Bits() == 0 || (set.Version == "IPV4") != p.Addr().Is4() {
			return nil, &wafError{400, "WAFInvalidParameterException", fmt.Sprintf("Error reason: The parameter contains formatting that is not valid., field: IP_ADDRESS, parameter: %s", a)}
		}
		addrs = append(addrs, a)
	}
	if len(addrs) > s.limit {
		return nil, &wafError{400, "WAFLimitsExceededException", "WAF couldn't perform the operation because you exceeded your resource limit. For example, the maximum number of WebACL objects that you can create for an Amazon Web Services account. For more information, see WAF quotas in the WAF Developer Guide."}
	}
	set.Addresses = addrs
	if d, ok := in["Description"].(string); ok {
		set.Description = d
	}
	set.LockToken = s.nextToken()
	return map[string]any{"NextLockToken": set.LockToken}, nil
}

func (s *WAFv2) listIPSets(in map[string]any) (any, *wafError) {
	scope := str(in, "Scope")
	if scope != "REGIONAL" && scope != "CLOUDFRONT" {
		return nil, &wafError{400, "WAFInvalidParameterException", "Error reason: The parameter contains formatting that is not valid., field: SCOPE_VALUE"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	keys := make([]string, 0, len(s.sets))
	for k := range s.sets {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		set := s.sets[k]
		if set.Scope != scope {
			continue
		}
		out = append(out, map[string]any{"Name": set.Name, "Id": set.ID, "Description": set.Description, "LockToken": set.LockToken,
			"ARN": fmt.Sprintf("arn:aws:wafv2:%s:123456789012:%s/ipset/%s/%s", Region, strings.ToLower(set.Scope), set.Name, set.ID)})
	}
	if out == nil {
		out = []map[string]any{}
	}
	return map[string]any{"IPSets": out}, nil
}
