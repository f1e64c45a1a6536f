package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"

	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/synth"
)

// The fixtures the command tests share: generated flow logs, the
// ip-ranges file, a message hook, an S3 test server, the bootstrap
// binary. (The AWS environment is awstest.Env and awstest.SetEnv.)

// testIPRanges is a small ip-ranges.json, for the aws-service-range guard.
const testIPRanges = `{"syncToken":"1","createDate":"2026-11-20-00-00-00","prefixes":[{"ip_prefix":"52.94.76.0/22","region":"us-west-2","service":"AMAZON","network_border_group":"us-west-2"}],"ipv6_prefixes":[{"ipv6_prefix":"2600:1f14::/35","region":"us-west-2","service":"AMAZON","network_border_group":"us-west-2"}]}`

// writeIPRanges writes testIPRanges to dir/ip-ranges.json and returns its
// path.
func writeIPRanges(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "ip-ranges.json")
	if err := os.WriteFile(p, []byte(testIPRanges), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeConfig writes a configuration to dir/flowguard.yaml and returns
// its path.
func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "flowguard.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// slackNotify is a notify section with one Slack incoming webhook,
// oncall-slack, reached at hookURL.
func slackNotify(hookURL string) string {
	return `notify:
  language: en
  slack:
    - name: oncall-slack
      webhook_url: ` + hookURL + `/services/T000/B000/XXXX
`
}

// genFile writes generated flow logs, with a header line, to a temporary
// file and returns its path and the generator (for labels).
func genFile(t *testing.T, records int, seed uint64) (string, *synth.Generator) {
	t.Helper()
	cfg := synth.DefaultConfig()
	cfg.Records, cfg.Seed = records, seed
	return writeGenerated(t, cfg, true)
}

// writeGenerated writes the flow logs cfg generates to flows.log in a
// temporary directory, with a header line when header is set, and returns
// its path and the generator (for labels).
func writeGenerated(t *testing.T, cfg synth.Config, header bool) (string, *synth.Generator) {
	t.Helper()
	g := synth.New(cfg)
	var buf bytes.Buffer
	if err := g.WriteText(&buf, header); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "flows.log")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, g
}

// scanFlows writes generated flow logs (no header line) with an inbound
// port scan, and returns their path and the scanner's address.
func scanFlows(t *testing.T, records int, seed uint64) (string, string) {
	t.Helper()
	cfg := synth.DefaultConfig()
	cfg.Records, cfg.Seed = records, seed
	logs, g := writeGenerated(t, cfg, false)
	return logs, inboundScanner(t, g)
}

// inboundScanners returns the actors of the generator's inbound port
// scans of one target, in label order.
func inboundScanners(g *synth.Generator) []string {
	var out []string
	for _, l := range g.Labels() {
		if l.Type == "Recon:EC2/Portscan" && l.Direction == "inbound" && l.Target != "" {
			out = append(out, l.Actor)
		}
	}
	return out
}

// inboundScanner returns the last of the generator's inbound port
// scanners; the test fails when there is none.
func inboundScanner(t *testing.T, g *synth.Generator) string {
	t.Helper()
	all := inboundScanners(g)
	if len(all) == 0 {
		t.Fatal("the generator made no inbound port scan")
	}
	return all[len(all)-1]
}

// messageHook is an HTTP endpoint that keeps the bodies it receives: a
// Slack incoming webhook, or a generic webhook.
type messageHook struct {
	URL    string
	mu     sync.Mutex
	bodies []string
}

// newSlackHook starts a hook answering as Slack does (200, "ok"); it is
// closed when the test ends.
func newSlackHook(t *testing.T) *messageHook {
	return newMessageHook(t, func(w http.ResponseWriter) { w.Write([]byte("ok")) })
}

// newWebhook starts a hook answering 204 No Content; it is closed when
// the test ends.
func newWebhook(t *testing.T) *messageHook {
	return newMessageHook(t, func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) })
}

func newMessageHook(t *testing.T, answer func(http.ResponseWriter)) *messageHook {
	t.Helper()
	h := &messageHook{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, string(b))
		h.mu.Unlock()
		answer(w)
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

// messages returns the bodies received so far.
func (h *messageHook) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bodies...)
}

// joined returns the bodies received so far, one a line.
func (h *messageHook) joined() string { return strings.Join(h.messages(), "\n") }

// count returns how many bodies received so far contain about.
func (h *messageHook) count(about string) int {
	k := 0
	for _, b := range h.messages() {
		if strings.Contains(b, about) {
			k++
		}
	}
	return k
}

// reset forgets the bodies received so far.
func (h *messageHook) reset() {
	h.mu.Lock()
	h.bodies = nil
	h.mu.Unlock()
}

// startS3 serves faker (gofakes3 over a backend) for the test, creates
// the buckets, and returns the server's URL and a path-style client.
func startS3(t *testing.T, faker *gofakes3.GoFakeS3, buckets ...string) (string, *s3.Client) {
	t.Helper()
	srv := httptest.NewServer(faker.Server())
	t.Cleanup(srv.Close)
	c := s3.NewFromConfig(awstest.ClientConfig(srv.URL), func(o *s3.Options) { o.UsePathStyle = true })
	for _, b := range buckets {
		if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	return srv.URL, c
}

// bootstrapBinary copies the built binary to dir/bootstrap, the name a
// provided.al2023 function runs, and returns its path.
func bootstrapBinary(t *testing.T, dir string) string {
	t.Helper()
	bootstrap := filepath.Join(dir, "bootstrap")
	if b, err := os.ReadFile(flowguardBinary(t)); err != nil || os.WriteFile(bootstrap, b, 0o755) != nil {
		t.Fatalf("cannot copy the binary to bootstrap: %v", err)
	}
	return bootstrap
}
