package source

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// liveConfig reads one sources: entry.
func liveConfig(t testing.TB, text string) LiveConfig {
	t.Helper()
	var c LiveConfig
	if err := yaml.Unmarshal([]byte(text), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// newTestFirehose builds a firehose source on a free port, with the access
// key "s3cret".
func newTestFirehose(t *testing.T, extra string) *firehose {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := NewLive(liveConfig(t, "name: fh\ntype: firehose\nlisten: 127.0.0.1:0\naccess_key_file: key\n"+extra), LiveDeps{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return l.(*firehose)
}

func (f *firehose) url(t *testing.T) string {
	t.Helper()
	for range 500 {
		if a := f.Addr(); a != nil {
			return "http://" + a.String() + "/"
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the firehose endpoint did not start")
	return ""
}

type firehoseAnswer struct {
	status       int
	RequestID    string `json:"requestId"`
	Timestamp    int64  `json:"timestamp"`
	ErrorMessage string `json:"errorMessage"`
}

// deliver posts records as Amazon Data Firehose does (protocol 1.0, gzip
// body) and returns the response.
func deliver(t *testing.T, url, key, id string, gzipped bool, records ...[]byte) firehoseAnswer {
	t.Helper()
	return deliverWith(t, http.DefaultClient, url, key, id, gzipped, records...)
}

func deliverWith(t *testing.T, client *http.Client, url, key, id string, gzipped bool, records ...[]byte) firehoseAnswer {
	t.Helper()
	type rec struct {
		Data string `json:"data"`
	}
	body := struct {
		RequestID string `json:"requestId"`
		Timestamp int64  `json:"timestamp"`
		Records   []rec  `json:"records"`
	}{id, time.Now().UnixMilli(), nil}
	for _, r := range records {
		body.Records = append(body.Records, rec{base64.StdEncoding.EncodeToString(r)})
	}
	js, _ := json.Marshal(body)
	if gzipped {
		js = gz(t, string(js))
	}
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(js))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amz-Firehose-Protocol-Version", "1.0")
	req.Header.Set("X-Amz-Firehose-Request-Id", id)
	req.Header.Set("X-Amz-Firehose-Source-Arn", "arn:aws:firehose:us-east-1:123456789012:deliverystream/flowlogs")
	if key != "" {
		req.Header.Set("X-Amz-Firehose-Access-Key", key)
	}
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := client.Do(req)
	if err != nil {
		return firehoseAnswer{status: -1, ErrorMessage: err.Error()}
	}
	defer resp.Body.Close()
	a := firehoseAnswer{status: resp.StatusCode}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("response Content-Type %q, want application/json", ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Errorf("response is not JSON: %v", err)
	}
	if a.RequestID != id {
		t.Errorf("response requestId %q, want %q", a.RequestID, id)
	}
	if a.Timestamp < time.Now().Add(-time.Minute).UnixMilli() {
		t.Errorf("response timestamp %d is not the time of the answer", a.Timestamp)
	}
	return a
}

func TestFirehoseDelivery(t *testing.T) {
	f := newTestFirehose(t, "")
	d := startDaemon(t, f, nil)
	url := f.url(t)
	a, b, c := flowLine("198.51.100.1", 22, 1), flowLine("198.51.100.2", 23, 2), flowLine("198.51.100.3", 24, 3)
	for _, tc := range []struct {
		name, key string
		want      int
	}{{"no key", "", 401}, {"wrong key", "s3cretX", 401}, {"wrong key, same length", "s3creX", 401}} {
		if got := deliver(t, url, tc.key, "req-"+tc.name, true, []byte(a)); got.status != tc.want || got.ErrorMessage == "" {
			t.Errorf("%s: got %d %q, want %d with an error message", tc.name, got.status, got.ErrorMessage, tc.want)
		}
	}
	// A direct flow log record, a subscription payload, a control message.
	got := deliver(t, url, "s3cret", "req-1", true, []byte(a), subscription(t, "DATA_MESSAGE", 1700000000000, b, c), subscription(t, "CONTROL_MESSAGE", 0))
	if got.status != 200 || got.ErrorMessage != "" {
		t.Fatalf("delivery: %+v", got)
	}
	if recs := d.got(); strings.Join(recs, "\n") != a+"\n"+b+"\n"+c {
		t.Errorf("records %q", recs)
	}
	// Uncompressed bodies are accepted too.
	if got := deliver(t, url, "s3cret", "req-2", false, []byte(a)); got.status != 200 {
		t.Errorf("plain delivery: %+v", got)
	}
	if n := len(d.got()); n != 4 {
		t.Errorf("%d records after the second delivery, want 4", n)
	}
	// A bad record is skipped, the others go through.
	if got := deliver(t, url, "s3cret", "req-3", true, []byte(b), append([]byte{0x1f, 0x8b}, "junk"...)); got.status != 200 {
		t.Errorf("delivery with a bad record: %+v", got)
	}
	if n := len(d.got()); n != 5 {
		t.Errorf("%d records after the delivery with a bad record, want 5", n)
	}
	if st := f.Status(); !strings.Contains(st.LastError, "req-3, record 2") || !st.Connected {
		t.Errorf("status %+v, want the bad record named", st)
	}
}

func TestFirehoseRefusesBadRequests(t *testing.T) {
	f := newTestFirehose(t, "max_body_bytes: 1000\npath: /flowlogs\n")
	startDaemon(t, f, nil)
	url := f.url(t) + "flowlogs"
	if got := deliver(t, url, "s3cret", "big", true, bytes.Repeat([]byte("x"), 2000)); got.status != http.StatusRequestEntityTooLarge {
		t.Errorf("big body: %+v", got)
	}
	if got := deliver(t, f.url(t)+"other", "s3cret", "path", true, []byte("x")); got.status != http.StatusNotFound {
		t.Errorf("other path: %+v", got)
	}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("{not json"))
	req.Header.Set("X-Amz-Firehose-Access-Key", "s3cret")
	req.Header.Set("X-Amz-Firehose-Request-Id", "bad-json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad JSON: %d", resp.StatusCode)
	}
}

// TestFirehoseAnswersAfterCommitAndRestart checks at-least-once from
// Firehose's side: no 200 before the records are saved, and a retry of a
// request that was saved before a crash is answered without being
// counted again.
func TestFirehoseAnswersAfterCommitAndRestart(t *testing.T) {
	f := newTestFirehose(t, "format: ${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}\n")
	d := startDaemon(t, f, nil)
	d.hold = true // saved, never committed: then the process dies
	url := f.url(t)
	a, b := flowLine("198.51.100.1", 22, 1), flowLine("198.51.100.2", 23, 2)
	answered := make(chan firehoseAnswer, 1)
	go func() { answered <- deliver(t, url, "s3cret", "req-A", true, []byte(a)) }()
	d.waitRecords(1, 5*time.Second)
	select {
	case got := <-answered:
		t.Fatalf("answered %+v before the records were committed", got)
	case <-time.After(200 * time.Millisecond):
	}
	saved := d.positions()
	d.stop() // the crash: Firehose gets no 200 and will retry
	if got := <-answered; got.status == 200 {
		t.Fatalf("answered 200 for a delivery never committed: %+v", got)
	}

	f2 := newTestFirehose(t, "")
	d2 := startDaemon(t, f2, saved)
	url = f2.url(t)
	if got := deliver(t, url, "s3cret", "req-A", true, []byte(a)); got.status != 200 {
		t.Fatalf("retry after restart: %+v", got)
	}
	if n := len(d2.got()); n != 0 {
		t.Errorf("the retry of a saved delivery was counted again (%d records)", n)
	}
	if got := deliver(t, url, "s3cret", "req-B", true, []byte(b)); got.status != 200 {
		t.Fatalf("new delivery after restart: %+v", got)
	}
	if recs := d2.got(); len(recs) != 1 || recs[0] != b {
		t.Errorf("records after restart %q, want %q", recs, b)
	}
	// Retries of a delivery still in flight wait for the same commit.
	d2.mu.Lock()
	d2.hold = true
	d2.mu.Unlock()
	first := make(chan firehoseAnswer, 2)
	go func() { first <- deliver(t, url, "s3cret", "req-C", true, []byte(a)) }()
	d2.waitRecords(2, 5*time.Second)
	go func() { first <- deliver(t, url, "s3cret", "req-C", true, []byte(a)) }()
	time.Sleep(100 * time.Millisecond)
	if err := f2.Commit(t.Context(), d2.positions()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got := <-first; got.status != 200 {
			t.Errorf("req-C: %+v", got)
		}
	}
	if n := len(d2.got()); n != 2 {
		t.Errorf("%d records, want 2: the retry in flight was counted again", n)
	}
}

// TestFirehoseTLS serves HTTPS with a certificate made at test time, as
// Firehose requires.
func TestFirehoseTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	f := newTestFirehose(t, "tls_cert_file: "+filepath.Join(dir, "cert.pem")+"\ntls_key_file: "+filepath.Join(dir, "key.pem")+"\n")
	d := startDaemon(t, f, nil)
	url := "https" + strings.TrimPrefix(f.url(t), "http")
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	a := flowLine("198.51.100.9", 443, 1)
	if got := deliverWith(t, client, url, "s3cret", "tls-1", true, []byte(a)); got.status != 200 {
		t.Fatalf("delivery over TLS: %+v", got)
	}
	if recs := d.got(); len(recs) != 1 || recs[0] != a {
		t.Errorf("records %q", recs)
	}
}
