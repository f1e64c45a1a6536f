// Package server is the daemon's HTTP API under /api/v1/, with /healthz,
// /readyz and /metrics. docs/api.yaml describes it (OpenAPI 3).
package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/source"
	"github.com/flowguard/flowguard/internal/store"
)

// DefaultListen is where the API listens unless told otherwise: never on
// every interface unless asked.
const DefaultListen = "127.0.0.1:8787"

// maxBody bounds request bodies.
const maxBody = 1 << 20

// Backend is what the API serves: the daemon.
type Backend interface {
	Store() *store.Store
	Config() *config.Config
	Logger() *slog.Logger
	Sources() []source.Status
	Ready() bool
	TokenPath() string
	Registry() *prometheus.Registry
	// Recent returns the raw data the sources other than files delivered
	// at or after since that the backend still keeps, oldest first:
	// queries read it besides the followed files.
	Recent(since time.Time) []RecentChunk
}

// RecentChunk is raw flow log data a stream source delivered (Kinesis,
// Firehose, Kafka, ...), kept in memory for queries.
type RecentChunk struct {
	// Source is the source's name; Name the object's (stream, shard, file).
	Source, Name string
	// Arrived is when the data reached the source.
	Arrived time.Time
	// Header is the object's header line when Data starts after it (it
	// names the fields of a custom format), else nil.
	Header []byte
	// Data holds whole records. It is never changed once handed over.
	Data []byte
	// Open, when not nil, reads a whole object (an S3 object) again from
	// where the source found it; Data is then empty and Size is the
	// object's size, or -1.
	Open func(ctx context.Context) (io.ReadCloser, error)
	Size int64
}

// Server is the HTTP API.
type Server struct {
	b     Backend
	log   *slog.Logger
	token []byte
	now   func() time.Time
	hub   *Hub
}

// New reads the API token (generating it at first start) and returns the
// server.
func New(b Backend) (*Server, error) {
	s := &Server{b: b, log: b.Logger().With("component", "http"), now: time.Now}
	tok, err := loadToken(b.TokenPath(), s.log)
	if err != nil {
		return nil, err
	}
	s.token = tok
	s.hub = NewHub()
	if e, ok := b.(interface{ Events() *Hub }); ok && e.Events() != nil {
		s.hub = e.Events() // the daemon publishes into it
	}
	return s, nil
}

// Run serves on listen (or server.listen, or DefaultListen) until ctx is
// done, then shuts down, letting requests in flight finish for a few
// seconds.
func Run(ctx context.Context, b Backend, listen string) error {
	s, err := New(b)
	if err != nil {
		return err
	}
	if listen == "" {
		if c := b.Config(); c.Server != nil && c.Server.Listen != "" {
			listen = c.Server.Listen
		} else {
			listen = DefaultListen
		}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done, then shuts down, letting requests
// in flight finish for a few seconds. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.log.Info("serving the API", "url", "http://"+ln.Addr().String()+"/")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("cannot stop the API: %w", err)
	}
	return nil
}

// loadToken reads the token file, or creates it with a new random token
// (mode 0600) when it does not exist.
func loadToken(path string, log *slog.Logger) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		tok := []byte(strings.TrimSpace(string(b)))
		if len(tok) < 16 {
			return nil, fmt.Errorf("the API token in %s is shorter than 16 characters", path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot read the API token: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("cannot make an API token: %w", err)
	}
	tok := []byte(hex.EncodeToString(raw[:]))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cannot write the API token: %w", err)
	}
	// Written whole to a private file, then linked into place: a process
	// killed meanwhile leaves no empty token file behind, and of two
	// processes starting at once the second reads the first one's token.
	f, err := os.CreateTemp(filepath.Dir(path), ".token-*")
	if err != nil {
		return nil, fmt.Errorf("cannot write the API token: %w", err)
	}
	defer os.Remove(f.Name())
	_, werr := f.Write(append(tok, '\n'))
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return nil, fmt.Errorf("cannot write the API token: %w", err)
	}
	if err := os.Link(f.Name(), path); errors.Is(err, os.ErrExist) {
		return loadToken(path, log)
	} else if err != nil {
		return nil, fmt.Errorf("cannot write the API token: %w", err)
	}
	log.Info("generated the API token; requests that change state need it as Authorization: Bearer", "token_file", path)
	return tok, nil
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.b.Registry(), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/v1/findings", s.listFindings)
	mux.HandleFunc("GET /api/v1/findings/{id}", s.getFinding)
	mux.HandleFunc("POST /api/v1/findings/{id}/archive", s.auth(s.archive(true)))
	mux.HandleFunc("POST /api/v1/findings/{id}/unarchive", s.auth(s.archive(false)))
	mux.HandleFunc("POST /api/v1/findings/{id}/feedback", s.auth(s.feedback))
	mux.HandleFunc("GET /api/v1/blocks", s.listBlocks)
	mux.HandleFunc("POST /api/v1/blocks/{ip}/unblock", s.auth(s.unblock))
	mux.HandleFunc("GET /api/v1/alarms", s.alarms)
	mux.HandleFunc("GET /api/v1/audit", s.audit)
	mux.HandleFunc("GET /api/v1/sources", s.sources)
	mux.HandleFunc("GET /api/v1/correlate", s.correlate)
	mux.HandleFunc("GET /api/v1/events", s.events)
	mux.HandleFunc("POST /api/v1/query", s.auth(s.query))
	s.dashboardRoutes(mux)
	return mux
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeList answers with rows read from the store (an empty array for
// none), or with err as a 500.
func writeList[T any](w http.ResponseWriter, rows []T, err error) {
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	if rows == nil {
		rows = []T{}
	}
	writeJSON(w, http.StatusOK, rows)
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, apiError{Error: fmt.Sprintf(format, args...)})
}

// auth checks the Bearer token in constant time; a wrong or missing token
// is answered 401 and recorded in the audit trail.
func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), s.token) != 1 {
			detail, _ := json.Marshal(map[string]string{"method": r.Method, "path": r.URL.Path, "remote": r.RemoteAddr,
				"reason": map[bool]string{true: "wrong token", false: "no Bearer token"}[ok]})
			if _, err := s.b.Store().AppendAudit(r.Context(), store.AuditEntry{Action: "api_unauthorized", Subject: r.RemoteAddr, Detail: detail}); err != nil {
				s.log.Warn("cannot audit a refused request", "err", err)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="flowguard"`)
			fail(w, http.StatusUnauthorized, "this request changes state: send Authorization: Bearer <token> (the token file is logged at start)")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next(w, r)
	}
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.b.Ready() {
		fail(w, http.StatusServiceUnavailable, "not ready: checkpoints loading or sources not yet connected")
		return
	}
	io.WriteString(w, "ready\n")
}

// CanonicalPrefix parses an address or CIDR block as the API takes it:
// an IPv4-mapped IPv6 address (::ffff:192.0.2.1) is the IPv4 address.
func CanonicalPrefix(s string) (netip.Prefix, error) {
	p, err := finding.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, err
	}
	if a := p.Addr(); a.Is4In6() {
		bits := max(p.Bits()-96, 0)
		return netip.PrefixFrom(a.Unmap(), bits).Masked(), nil
	}
	return p.Masked(), nil
}

// parseSince reads a duration back from now ("1h", "7d") or an RFC 3339
// time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if strings.HasSuffix(s, "d") {
		if n, err := strconv.Atoi(strings.TrimSuffix(s, "d")); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("since %q: want a duration (1h, 7d) or an RFC 3339 time", s)
}

// sourceStatus is each source's status with its lag in seconds, as GET
// /api/v1/sources and the sources event give it.
func (s *Server) sourceStatus() []sourceStatus {
	st := s.b.Sources()
	res := make([]sourceStatus, len(st))
	for i := range st {
		if st[i].Positions == nil {
			st[i].Positions = []source.Position{}
		}
		res[i] = sourceStatus{Status: st[i], LagSeconds: st[i].Lag.Seconds()}
	}
	return res
}

type sourceStatus struct {
	source.Status
	LagSeconds float64 `json:"lag_seconds"`
}

func (s *Server) sources(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.sourceStatus())
}
