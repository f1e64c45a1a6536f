package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/flowguard/flowguard/internal/respond"
)

// Email sends each message as a multipart/alternative e-mail (plain text
// and a simple HTML rendering of the same text) through an SMTP server.
type Email struct {
	cfg   EmailConfig
	scrub scrubber
	opts  Options
}

// NewEmail returns an e-mail notifier. STARTTLS is required unless the
// config says opportunistic or never; AUTH PLAIN is used when a username
// is set, and only over TLS or to localhost (net/smtp refuses otherwise).
func NewEmail(c EmailConfig, opts Options) (*Email, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("notify: email %q: %w", c.Name, err)
	}
	if c.PasswordFile != "" && c.Password == "" {
		return nil, fmt.Errorf("notify: email %q: password_file not read (call Config.Resolve)", c.Name)
	}
	if c.Port == 0 {
		c.Port = 587
	}
	if c.StartTLS == "" {
		c.StartTLS = StartTLSAlways
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	return &Email{cfg: c, scrub: newScrubber(string(c.Password)), opts: opts}, nil
}

// Name is the notifier's name from the config.
func (m *Email) Name() string { return m.cfg.Name }

// Notify sends the message. 4xx SMTP replies and connection failures are
// retryable; 5xx replies and TLS or authentication refusals are not.
func (m *Email) Notify(ctx context.Context, msg respond.Message) (bool, error) {
	log := m.opts.logger().With("notifier", m.cfg.Name, "kind", "email")
	body, err := m.compose(msg)
	if err != nil {
		return false, fmt.Errorf("email %s: cannot compose the message: %w", m.cfg.Name, err)
	}
	retry, err := m.send(ctx, body)
	if err != nil {
		e := m.scrub.fail("email "+m.cfg.Name+" via "+net.JoinHostPort(m.cfg.Host, strconv.Itoa(m.cfg.Port)), err)
		log.Warn("notification failed", "error", e.Error(), "retry", retry)
		return retry, e
	}
	log.Info("notification sent", "recipients", len(m.cfg.To), "events", len(msg.Events))
	return false, nil
}

type stepError struct {
	step  string
	err   error
	retry bool
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func (m *Email) send(ctx context.Context, body []byte) (bool, error) {
	addr := net.JoinHostPort(m.cfg.Host, strconv.Itoa(m.cfg.Port))
	d := net.Dialer{Timeout: m.cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return !errors.Is(err, context.Canceled), err
	}
	deadline := time.Now().Add(m.cfg.Timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := smtp.NewClient(conn, m.cfg.Host)
	if err != nil {
		conn.Close()
		return smtpRetryable(err), &stepError{"greeting", err, smtpRetryable(err)}
	}
	defer c.Close()
	step := func(name string, err error) error {
		if err == nil {
			return nil
		}
		return &stepError{name, err, smtpRetryable(err)}
	}
	host, _ := os.Hostname()
	if host == "" || strings.ContainsAny(host, " \r\n") {
		host = "localhost"
	}
	if err := step("EHLO", c.Hello(host)); err != nil {
		return err.(*stepError).retry, err
	}
	if ok, _ := c.Extension("STARTTLS"); ok && m.cfg.StartTLS != StartTLSNever {
		tc := &tls.Config{ServerName: m.cfg.Host, InsecureSkipVerify: m.cfg.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
		if err := c.StartTLS(tc); err != nil {
			return false, &stepError{"STARTTLS", err, false}
		}
	} else if m.cfg.StartTLS == StartTLSAlways {
		return false, &stepError{"STARTTLS", errors.New("the server does not offer STARTTLS and the config says starttls: always"), false}
	}
	if m.cfg.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return false, &stepError{"AUTH", errors.New("the server offers no AUTH"), false}
		}
		auth := smtp.PlainAuth("", m.cfg.Username, string(m.cfg.Password), m.cfg.Host)
		if err := c.Auth(auth); err != nil {
			return smtpRetryable(err) && isSMTPCode(err, 4), &stepError{"AUTH", err, false}
		}
	}
	from, _ := mail.ParseAddress(m.cfg.From)
	if err := step("MAIL FROM", c.Mail(from.Address)); err != nil {
		return err.(*stepError).retry, err
	}
	for _, to := range m.cfg.To {
		a, _ := mail.ParseAddress(to)
		if err := step("RCPT TO", c.Rcpt(a.Address)); err != nil {
			return err.(*stepError).retry, err
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpRetryable(err), &stepError{"DATA", err, false}
	}
	if _, err := w.Write(body); err != nil {
		return true, &stepError{"DATA", err, true}
	}
	if err := w.Close(); err != nil {
		return smtpRetryable(err), &stepError{"end of DATA", err, false}
	}
	_ = c.Quit()
	return false, nil
}

// smtpRetryable: 4xx replies are transient by SMTP's definition; 5xx are
// permanent; network errors are worth another try.
func smtpRetryable(err error) bool {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code >= 400 && te.Code < 500
	}
	return transient(err)
}

func isSMTPCode(err error, class int) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code/100 == class
}

var emailHTML = template.Must(template.New("mail").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body style="font-family: sans-serif">
<pre style="font-family: ui-monospace, Menlo, Consolas, monospace; white-space: pre-wrap; font-size: 14px">{{.Text}}</pre>
{{- if .Link}}
<p><a href="{{.Link}}">{{.Open}}</a></p>
{{- end}}
</body></html>
`))

// compose builds the RFC 5322 message: headers with RFC 2047 encoded
// words where needed, and multipart/alternative text/plain + text/html in
// quoted-printable UTF-8.
func (m *Email) compose(msg respond.Message) ([]byte, error) {
	var buf bytes.Buffer
	subject := oneLine(msg.Subject)
	if subject == "" {
		subject = "flowguard"
	}
	now := m.opts.now()
	from, err := mail.ParseAddress(m.cfg.From)
	if err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	var to []string
	for _, t := range m.cfg.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("to: %w", err)
		}
		to = append(to, a.String())
	}
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	mw := multipart.NewWriter(&buf)
	hdr := func(k, v string) { fmt.Fprintf(&buf, "%s: %s\r\n", k, v) }
	hdr("From", from.String())
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", foldEncoded(mime.QEncoding.Encode("utf-8", subject)))
	hdr("Date", now.Format(time.RFC1123Z))
	hdr("Message-ID", "<"+newID()+"@"+domain+">")
	hdr("MIME-Version", "1.0")
	hdr("Auto-Submitted", "auto-generated")
	hdr("Content-Type", "multipart/alternative; boundary="+mw.Boundary())
	buf.WriteString("\r\n")

	part := func(ctype string, content string) error {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {ctype + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(strings.ReplaceAll(content, "\n", "\r\n"))); err != nil {
			return err
		}
		return qp.Close()
	}
	text := strings.ReplaceAll(msg.Text, "\r\n", "\n")
	if text == "" {
		text = subject + "\n"
	}
	if err := part("text/plain", text); err != nil {
		return nil, err
	}
	var html bytes.Buffer
	if err := emailHTML.Execute(&html, map[string]string{"Subject": subject, "Text": text, "Link": msg.Link, "Open": word(m.opts.Language, "dashboard")}); err != nil {
		return nil, err
	}
	if err := part("text/html", html.String()); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// foldEncoded puts each encoded word of a long header on its own
// continuation line, keeping lines under 78 characters.
func foldEncoded(s string) string {
	return strings.ReplaceAll(s, "?= =?", "?=\r\n =?")
}
