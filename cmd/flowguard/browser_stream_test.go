package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/synth"
)

// firehoseDeliver posts flow log lines to a firehose source as one
// Amazon Data Firehose delivery and fails unless it is answered 200
// (which comes once the records are committed).
func firehoseDeliver(t *testing.T, url, key, id string, lines []byte) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.DefaultClient.Do(awstest.FirehoseRequest(url, key, id, lines))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("delivery %s: %s", id, resp.Status)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s: %v", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDashboardStreamSourceInBrowser: a daemon fed only by a firehose
// source (records the followed files never hold) shows them in the
// overview's chart and in its sources table, updates both live when a
// delivery arrives (server-sent events, no reload), and its finding page
// shows the rule, thresholds and sample records detect --explain prints.
func TestDashboardStreamSourceInBrowser(t *testing.T) {
	ctx := browser(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte("s3cret-key-0001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fh, api := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf("home_networks: [10.0.0.0/16]\nserver:\n  listen: %s\nsources:\n  - name: firehose-vpc\n    type: firehose\n    listen: %s\n    access_key_file: key\n", api, fh)
	if err := os.WriteFile(filepath.Join(dir, "flowguard.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(flowguardBinary(t), "serve", "--config", filepath.Join(dir, "flowguard.yaml"), "--db", filepath.Join(dir, "f.db"), "--log-level", "warn")
	stderr := newSyncBuffer()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })

	// Half an hour of traffic up to now, with the generator's attacks;
	// the last five minutes are delivered once the page is open.
	var b bytes.Buffer
	now := time.Now().UTC()
	start := now.Add(-35 * time.Minute).Truncate(time.Minute)
	if err := synth.New(synth.Config{Records: 30000, Seed: 11, Start: start, Duration: 25 * time.Minute,
		AccountID: "123456789012", Region: "us-east-1"}).WriteText(&b, false); err != nil {
		t.Fatal(err)
	}
	var early, late bytes.Buffer
	sc := bufio.NewScanner(&b)
	cut, end := now.Add(-5*time.Minute).Unix(), now.Unix()
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		at, err := strconv.ParseInt(f[10], 10, 64)
		switch {
		case err != nil || at > end: // the generator's traffic goes on past now
		case at >= cut:
			late.WriteString(line + "\n")
		default:
			early.WriteString(line + "\n")
		}
	}
	url := "http://" + api + "/"
	firehoseDeliver(t, "http://"+fh+"/", "s3cret-key-0001", "req-early", early.Bytes())

	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("the dashboard did not load: %v\n%s", err, stderr)
	}
	js(t, ctx, `const r = document.querySelector("#range"); r.value = "1h"; r.dispatchEvent(new Event("change"))`)
	// The last hour holds some 30 minutes of points; the first view (the
	// last 15 minutes) at most 15.
	waitFor(t, ctx, "records in the chart", `document.querySelectorAll("svg.chart circle.pt.records").length >= 25`, 40*time.Second)
	vals, err := chartValues(ctx, "svg.chart")
	if err != nil {
		t.Fatal(err)
	}
	positive := 0
	for _, v := range vals {
		if v > 0 {
			positive++
		}
	}
	if positive < 25 {
		t.Errorf("the records-per-second chart has %d points with data: %v", positive, vals)
	}
	recordsOf := `(() => { const row = Array.from(document.querySelectorAll("#sources-box tbody tr")).find(r => r.textContent.includes("firehose-vpc"));
		return row ? Number(row.children[4].textContent.replace(/,/g, "")) : -1 })()`
	before, err := chromedp.Run(ctx, chromedp.Evaluate[float64](recordsOf))
	if err != nil || before <= 0 {
		t.Fatalf("the sources table shows %v records for firehose-vpc (%v): %s", before, err, text(t, ctx, "#sources-box"))
	}
	waitFor(t, ctx, "live updates", `document.querySelector("#status").textContent.includes("live updates on")`, 40*time.Second)

	// A delivery while the page is open: the table grows by itself.
	js(t, ctx, `window.fgMark = 1`) // gone if the page reloaded
	firehoseDeliver(t, "http://"+fh+"/", "s3cret-key-0001", "req-late", late.Bytes())
	want := before + float64(bytes.Count(late.Bytes(), []byte{'\n'}))
	for deadline := time.Now().Add(40 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[float64](recordsOf))
		mark, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.fgMark === 1`))
		if err == nil && got == want && mark {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sources table shows %v records for firehose-vpc, want %v, without a reload (page kept: %v; status %q)", got, want, mark, text(t, ctx, "#status"))
		}
	}
	checkScreenshot(t, "dashboard-stream-overview.png", screenshot(t, ctx))
	checkA11y(t, ctx, "overview")

	// The finding page: the rule's sentence, its thresholds, the records
	// the detector kept (from the deliveries), and the --explain text.
	waitFor(t, ctx, "a port scan as a finding", `Array.from(document.querySelectorAll("a.finding-link")).some(a => a.textContent.includes(" scanned "))`, 40*time.Second)
	js(t, ctx, `Array.from(document.querySelectorAll("a.finding-link")).find(a => a.textContent.includes(" scanned ")).click()`)
	waitFor(t, ctx, "the finding page", `document.querySelector("#explanation")`, 30*time.Second)
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#explanation tbody tr").length`)); n == 0 {
		t.Fatalf("no sample record on the finding page: %s", text(t, ctx, "main"))
	}
	rule := text(t, ctx, "#finding-rule")
	if len(rule) < 20 || strings.Contains(rule, "docs/detection.md") {
		t.Errorf("the finding page's rule is %q, want the rule's sentence", rule)
	}
	samples := text(t, ctx, "#explanation tbody")
	if !strings.Contains(samples, "firehose request req-") || !regexp.MustCompile(`(ACCEPT|REJECT) OK`).MatchString(samples) {
		t.Errorf("the sample records: %q", samples)
	}
	ex := text(t, ctx, "#explain-text")
	for _, want := range []string{"  rule:       ", "  evidence:   ", "  records:\n    firehose request req-"} {
		if !strings.Contains(ex, want) {
			t.Errorf("the --explain text lacks %q:\n%s", want, ex)
		}
	}
	checkA11y(t, ctx, "finding")
	if bad := foreignRequests(t, ctx, strings.TrimSuffix(url, "/")); len(bad) > 0 {
		t.Errorf("the dashboard asked other origins for: %v", bad)
	}
}
