package notify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/flowguard/flowguard/internal/respond"
)

// mailbox is a real SMTP server (go-smtp) that keeps what it receives.
type mailbox struct {
	mu       sync.Mutex
	user     string
	password string
	authed   []string
	from     string
	rcpt     []string
	data     [][]byte
	rcptErr  error
	tls      bool
}

type mailSession struct {
	mb   *mailbox
	conn *smtp.Conn
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *mailSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != s.mb.user || pass != s.mb.password {
			// A careless server repeats what it was given.
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials " + user + ":" + pass}
		}
		s.mb.mu.Lock()
		s.mb.authed = append(s.mb.authed, user)
		s.mb.mu.Unlock()
		return nil
	}), nil
}
func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	s.mb.mu.Lock()
	defer s.mb.mu.Unlock()
	if s.mb.user != "" && len(s.mb.authed) == 0 {
		return &smtp.SMTPError{Code: 530, Message: "authentication required"}
	}
	s.mb.from = from
	return nil
}
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.mb.mu.Lock()
	defer s.mb.mu.Unlock()
	if s.mb.rcptErr != nil {
		return s.mb.rcptErr
	}
	s.mb.rcpt = append(s.mb.rcpt, to)
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.mb.mu.Lock()
	defer s.mb.mu.Unlock()
	s.mb.data = append(s.mb.data, b)
	s.mb.tls = isTLS
	return nil
}
func (s *mailSession) Reset()        {}
func (s *mailSession) Logout() error { return nil }

func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// startMailbox starts the server on 127.0.0.1 and returns its port.
func startMailbox(t *testing.T, mb *mailbox, withTLS bool) int {
	t.Helper()
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &mailSession{mb: mb, conn: c}, nil }))
	s.Domain = "mx.test"
	s.ReadTimeout, s.WriteTimeout = 5*time.Second, 5*time.Second
	if withTLS {
		s.TLSConfig = selfSigned(t)
	} else {
		s.AllowInsecureAuth = true
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

func TestEmailStartTLSAuthMultipart(t *testing.T) {
	mb := &mailbox{user: "flowguard", password: "correct horse"}
	port := startMailbox(t, mb, true)
	n, err := NewEmail(EmailConfig{
		Name: "oncall", Host: "127.0.0.1", Port: port, From: "flowguard <flowguard@example.com>",
		To: []string{"oncall@example.com", "当番 <sre@example.jp>"}, Username: "flowguard", Password: "correct horse",
		InsecureSkipVerify: true,
	}, Options{Language: Japanese})
	if err != nil {
		t.Fatal(err)
	}
	tm, _ := NewTemplates(Japanese, nil)
	msg, err := tm.Render(Data{Events: []respond.Event{{Finding: sshFinding()}}, DryRun: true, Now: t0, Link: "https://fg.example.com/?a=1&b=<2>"})
	if err != nil {
		t.Fatal(err)
	}
	if retry, err := n.Notify(context.Background(), msg); err != nil {
		t.Fatalf("retry=%v err=%v", retry, err)
	}
	if len(mb.data) != 1 || !mb.tls || len(mb.authed) != 1 {
		t.Fatalf("messages=%d tls=%v authed=%v", len(mb.data), mb.tls, mb.authed)
	}
	if mb.from != "flowguard@example.com" || strings.Join(mb.rcpt, ",") != "oncall@example.com,sre@example.jp" {
		t.Errorf("envelope from=%q rcpt=%v", mb.from, mb.rcpt)
	}
	for i, line := range strings.Split(string(mb.data[0]), "\r\n") {
		if len(line) > 998 {
			t.Errorf("line %d is %d bytes long", i, len(line))
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(mb.data[0]))
	if err != nil {
		t.Fatal(err)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil || subj != msg.Subject {
		t.Errorf("subject %q (%v), want %q", subj, err, msg.Subject)
	}
	if m.Header.Get("Message-ID") == "" || m.Header.Get("Date") == "" {
		t.Error("no Message-ID or Date")
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q %v", mt, err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	parts := map[string]string{}
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
			t.Errorf("part encoding %q", p.Header.Get("Content-Transfer-Encoding"))
		}
		b, err := io.ReadAll(quotedprintable.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		ct, cp, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if cp["charset"] != "utf-8" {
			t.Errorf("%s charset %q", ct, cp["charset"])
		}
		parts[ct] = strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	if parts["text/plain"] != msg.Text {
		t.Errorf("text part differs:\n%s", parts["text/plain"])
	}
	html := parts["text/html"]
	if !strings.Contains(html, "198.51.100.23 から 10.0.1.10 へ") || !strings.Contains(html, `href="https://fg.example.com/?a=1&amp;b=%3c2%3e"`) {
		t.Errorf("html part:\n%s", html)
	}
}

func TestEmailFailures(t *testing.T) {
	plain := &mailbox{}
	plainPort := startMailbox(t, plain, false)
	busy := &mailbox{rcptErr: &smtp.SMTPError{Code: 451, Message: "try again later"}}
	busyPort := startMailbox(t, busy, false)
	gone := &mailbox{rcptErr: &smtp.SMTPError{Code: 550, Message: "no such user"}}
	gonePort := startMailbox(t, gone, false)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()

	base := EmailConfig{Name: "m", Host: "127.0.0.1", From: "fg@example.com", To: []string{"a@example.com"}}
	tests := []struct {
		name      string
		port      int
		starttls  string
		wantRetry bool
		wantSent  *mailbox
	}{
		{"STARTTLS required but not offered", plainPort, "", false, nil},
		{"opportunistic without TLS", plainPort, StartTLSOpportunistic, false, plain},
		{"temporary failure 451", busyPort, StartTLSNever, true, nil},
		{"permanent failure 550", gonePort, StartTLSNever, false, nil},
		{"connection refused", closedPort, StartTLSNever, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.Port, c.StartTLS = tt.port, tt.starttls
			n, err := NewEmail(c, Options{})
			if err != nil {
				t.Fatal(err)
			}
			retry, err := n.Notify(context.Background(), respond.Message{Subject: "s", Text: "t\n"})
			if tt.wantSent != nil {
				if err != nil || len(tt.wantSent.data) != 1 {
					t.Errorf("err=%v, %d messages", err, len(tt.wantSent.data))
				}
				return
			}
			if err == nil || retry != tt.wantRetry {
				t.Errorf("retry=%v err=%v, want retry=%v", retry, err, tt.wantRetry)
			}
		})
	}
}

func TestEmailLeaksNoSecret(t *testing.T) {
	mb := &mailbox{user: "flowguard", password: "the-right-one"}
	port := startMailbox(t, mb, true)
	const wrong = "Pa55w0rd-that-must-not-leak"
	var logs bytes.Buffer
	n, err := NewEmail(EmailConfig{Name: "m", Host: "127.0.0.1", Port: port, From: "fg@example.com", To: []string{"a@example.com"},
		Username: "flowguard", Password: wrong, InsecureSkipVerify: true}, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := n.Notify(context.Background(), respond.Message{Subject: "s", Text: "t"})
	if err == nil || retry {
		t.Fatalf("retry=%v err=%v; want a final authentication error", retry, err)
	}
	if !strings.Contains(err.Error(), "535") {
		t.Errorf("error %q should keep the server's reply code", err)
	}
	assertNoSecret(t, err, &logs, wrong)
	if !strings.Contains(err.Error(), redacted) {
		t.Errorf("the server echoed the password; the error should show it redacted: %v", err)
	}
}
