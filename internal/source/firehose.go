package source

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// FirehoseConfig is the configuration of a firehose source: an HTTPS
// endpoint that Amazon Data Firehose delivers to (an "HTTP endpoint"
// destination), carrying flow log records published to Firehose directly
// or CloudWatch Logs subscription payloads.
type FirehoseConfig struct {
	// Listen is the address to listen on (required), e.g. 127.0.0.1:8443.
	Listen string `yaml:"listen"`
	// Path is the URL path Firehose posts to; "" or "/" accepts any.
	Path string `yaml:"path"`
	// AccessKeyFile holds the access key configured on the Firehose
	// stream, sent in X-Amz-Firehose-Access-Key (required).
	AccessKeyFile string `yaml:"access_key_file"`
	// TLSCertFile and TLSKeyFile serve HTTPS (Firehose only delivers over
	// HTTPS); leave both empty behind a TLS-terminating load balancer.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// Format is the flow log format of records without a header, in AWS's
	// ${field} syntax; "" is the default format.
	Format string `yaml:"format"`
	// MaxBodyBytes bounds a request's body after decompression; default
	// 128 MiB (Firehose buffers at most 64 MiB, and base64 adds a third).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// firehoseObject is the one object of a firehose source: the requests.
const firehoseObject = "requests"

// firehoseRecent is how many request ids a firehose source remembers to
// recognise Firehose's retries of requests already processed.
const firehoseRecent = 512

// NewFirehose builds a firehose source.
func NewFirehose(cfg LiveConfig, deps LiveDeps) (Live, error) {
	var fc FirehoseConfig
	if err := cfg.Decode(&fc); err != nil {
		return nil, err
	}
	where := "sources." + cfg.Name
	if fc.Listen == "" {
		return nil, fmt.Errorf("%s: a firehose source needs listen (host:port)", where)
	}
	if fc.AccessKeyFile == "" {
		return nil, fmt.Errorf("%s: a firehose source needs access_key_file (the stream's access key)", where)
	}
	if (fc.TLSCertFile == "") != (fc.TLSKeyFile == "") {
		return nil, fmt.Errorf("%s: tls_cert_file and tls_key_file go together", where)
	}
	if fc.MaxBodyBytes == 0 {
		fc.MaxBodyBytes = 128 << 20
	}
	for _, p := range []*string{&fc.AccessKeyFile, &fc.TLSCertFile, &fc.TLSKeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(deps.Dir, *p)
		}
	}
	base, err := newLiveBase(cfg, fc.Format, deps)
	if err != nil {
		return nil, err
	}
	return &firehose{liveBase: base, cfg: fc, pending: map[string]*fhPending{}}, nil
}

type firehose struct {
	liveBase
	cfg FirehoseConfig
	key []byte

	reqs    chan *fhRequest
	stopped chan struct{} // closed when Run returns

	mu      sync.Mutex
	pending map[string]*fhPending // by request id, emitted and not committed
	addr    net.Addr
}

// fhRequest is a decoded delivery, handed from the HTTP handler to Run.
type fhRequest struct {
	id    string
	data  []byte
	ts    time.Time
	reply chan *fhPending // the pending delivery to wait for; nil: done already
}

// fhPending is a delivery emitted and waiting for its Commit.
type fhPending struct {
	seq  uint64
	done chan struct{}
}

// Addr returns the address the source listens on once Run has started,
// or nil.
func (f *firehose) Addr() net.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addr
}

// Run serves Firehose's deliveries until ctx is done.
func (f *firehose) Run(ctx context.Context, from []Position, emit Emit) error {
	key, err := os.ReadFile(f.cfg.AccessKeyFile)
	if err != nil {
		return fmt.Errorf("cannot read the access key: %w", err)
	}
	f.key = []byte(strings.TrimSpace(string(key)))
	if len(f.key) == 0 {
		return fmt.Errorf("the access key file %s is empty", f.cfg.AccessKeyFile)
	}
	recent := newRecentIDs(firehoseRecent)
	for _, p := range from {
		if p.Object != firehoseObject {
			continue
		}
		t, err := parseAckToken(p.Token)
		if err != nil {
			return err
		}
		for _, id := range t.Recent {
			recent.add(id)
		}
	}
	ln, err := net.Listen("tcp", f.cfg.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", f.cfg.Listen, err)
	}
	f.mu.Lock()
	f.addr = ln.Addr()
	f.mu.Unlock()
	f.reqs, f.stopped = make(chan *fhRequest), make(chan struct{})
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.serve(w, r) }),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() {
		if f.cfg.TLSCertFile != "" {
			served <- srv.ServeTLS(ln, f.cfg.TLSCertFile, f.cfg.TLSKeyFile)
		} else {
			served <- srv.Serve(ln)
		}
	}()
	f.state.connected()
	defer func() {
		close(f.stopped) // waiting handlers answer 503 before the server shuts down
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	var seq uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-served:
			return fmt.Errorf("the firehose endpoint stopped: %w", err)
		case r := <-f.reqs:
			f.mu.Lock()
			p := f.pending[r.id]
			f.mu.Unlock()
			if p != nil || recent.has(r.id) { // a retry: answer with the first delivery
				r.reply <- p
				continue
			}
			if len(r.data) == 0 {
				r.reply <- nil
				continue
			}
			seq++
			recent.add(r.id)
			pos := Position{Object: firehoseObject, Token: recent.token(seq), Name: "firehose " + f.cfg.Listen}
			p = &fhPending{seq: seq, done: make(chan struct{})}
			f.mu.Lock()
			f.pending[r.id] = p
			f.mu.Unlock()
			r.reply <- p
			if err := emit(ctx, Chunk{Object: firehoseObject, Name: "firehose request " + r.id, Data: r.data, Header: f.header, Line: 1, Position: pos, Arrived: f.now()}); err != nil {
				return nil
			}
			f.state.read(pos, int64(len(r.data)), r.ts)
		}
	}
}

// Commit answers the deliveries whose chunks are saved.
func (f *firehose) Commit(_ context.Context, ps []Position) error {
	var upto uint64
	for _, p := range ps {
		if p.Object != firehoseObject {
			continue
		}
		t, err := parseAckToken(p.Token)
		if err != nil {
			return err
		}
		upto = max(upto, t.Seq)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, p := range f.pending {
		if p.seq <= upto {
			close(p.done)
			delete(f.pending, id)
		}
	}
	return nil
}

// firehoseBody is the JSON of a delivery request.
type firehoseBody struct {
	RequestID string `json:"requestId"`
	Timestamp int64  `json:"timestamp"`
	Records   []struct {
		Data string `json:"data"`
	} `json:"records"`
}

// serve handles one delivery: it answers only once the records are saved
// (Commit), so that Firehose retries whatever a crash lost.
func (f *firehose) serve(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Amz-Firehose-Request-Id")
	fail := func(code int, msg string) {
		f.log.Warn("firehose delivery refused", "request_id", id, "status", code, "error", msg, "remote", r.RemoteAddr)
		f.answer(w, code, id, msg)
	}
	if f.cfg.Path != "" && f.cfg.Path != "/" && r.URL.Path != f.cfg.Path {
		fail(http.StatusNotFound, "no such path")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(http.StatusMethodNotAllowed, "deliveries are POST requests")
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Amz-Firehose-Access-Key")), f.key) != 1 {
		fail(http.StatusUnauthorized, "missing or wrong X-Amz-Firehose-Access-Key")
		return
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, f.cfg.MaxBodyBytes)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(body)
		if err != nil {
			fail(http.StatusBadRequest, "Content-Encoding is gzip but the body is not: "+err.Error())
			return
		}
		body = io.LimitReader(zr, f.cfg.MaxBodyBytes+1)
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", f.cfg.MaxBodyBytes))
			return
		}
		fail(http.StatusBadRequest, "cannot read the body: "+err.Error())
		return
	}
	if int64(len(raw)) > f.cfg.MaxBodyBytes {
		fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("the decompressed body is larger than %d bytes", f.cfg.MaxBodyBytes))
		return
	}
	var req firehoseBody
	if err := json.Unmarshal(raw, &req); err != nil {
		fail(http.StatusBadRequest, "the body is not a Firehose delivery: "+err.Error())
		return
	}
	if req.RequestID == "" {
		req.RequestID = id
	}
	id = req.RequestID
	if id == "" {
		fail(http.StatusBadRequest, "the delivery has no requestId")
		return
	}
	var data []byte
	var newest int64
	var tmp []byte
	for i, rec := range req.Records {
		tmp, err = base64.StdEncoding.AppendDecode(tmp[:0], []byte(rec.Data))
		if err == nil {
			var ts int64
			data, ts, err = appendRecordLines(data, tmp)
			newest = max(newest, ts)
		}
		if err != nil { // one bad record does not hold back the others
			err = fmt.Errorf("firehose request %s, record %d: %w", id, i+1, err)
			f.log.Warn("record skipped", "error", err)
			f.state.fail(err)
		}
	}
	if newest == 0 {
		newest = req.Timestamp
	}
	fr := &fhRequest{id: id, data: data, reply: make(chan *fhPending, 1)}
	if newest > 0 {
		fr.ts = time.UnixMilli(newest)
	}
	select {
	case f.reqs <- fr:
	case <-f.stopped:
		fail(http.StatusServiceUnavailable, "flowguard is stopping")
		return
	}
	if p := <-fr.reply; p != nil {
		select {
		case <-p.done:
		case <-f.stopped:
			fail(http.StatusServiceUnavailable, "flowguard is stopping")
			return
		case <-r.Context().Done():
			return // Firehose gave up: it retries, and the retry finds this delivery
		}
	}
	f.answer(w, http.StatusOK, id, "")
}

// answer writes Firehose's response: the request id echoed, the time,
// and an error message when the delivery failed.
func (f *firehose) answer(w http.ResponseWriter, code int, id, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	resp := struct {
		RequestID    string `json:"requestId"`
		Timestamp    int64  `json:"timestamp"`
		ErrorMessage string `json:"errorMessage,omitempty"`
	}{id, f.now().UnixMilli(), msg}
	_ = json.NewEncoder(w).Encode(resp)
}
