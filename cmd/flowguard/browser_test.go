package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
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

	"github.com/flowguard/flowguard/internal/synth"
)

// chromiumPath is where Debian's chromium package puts the browser
// (.ci/run installs it).
const chromiumPath = "/usr/bin/chromium"

// browser starts headless Chromium with an empty profile and returns a
// tab's context. Without Chromium the test is skipped, except in CI
// (CI set), where it fails.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing in CI: .ci/run installs the chromium package", chromiumPath)
		}
		t.Skipf("%s is missing: apt-get install chromium to run the browser tests", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("cannot start %s: %v", chromiumPath, err)
	}
	return ctx
}

// foreignRequests returns what the page loaded (scripts, styles, fonts,
// images, fetches: the Resource Timing entries) from anywhere but prefix.
func foreignRequests(t *testing.T, ctx context.Context, prefix string) []string {
	t.Helper()
	urls, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`performance.getEntriesByType("resource").map(e => e.name)`))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range urls {
		if !strings.HasPrefix(u, prefix) && !strings.HasPrefix(u, "data:") {
			out = append(out, u)
		}
	}
	return out
}

// js runs a statement in the page.
func js(t *testing.T, ctx context.Context, code string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any]("(() => { "+code+" ; return null })()")); err != nil {
		t.Fatalf("%s: %v", code, err)
	}
}

// text returns the text of the first element matching sel.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent`, sel)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// screenshot captures the viewport as PNG.
func screenshot(t *testing.T, ctx context.Context) []byte {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

// checkScreenshot decodes a PNG and fails unless it looks like a page a
// person can read: mostly background, but with a fair share of ink and
// several distinct colours (text, chart lines, badges). It writes the
// PNG to $FLOWGUARD_SCREENSHOTS/name when that is set (docs/img).
func checkScreenshot(t *testing.T, name string, buf []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("%s: not a PNG: %v", name, err)
	}
	b := img.Bounds()
	colors := map[uint32]int{}
	ink := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[(r>>11)<<10|(g>>11)<<5|bl>>11]++
			if r < 0xc000 || g < 0xc000 || bl < 0xc000 {
				ink++
			}
		}
	}
	total := (b.Dx() / 2) * (b.Dy() / 2)
	share := float64(ink) / float64(total)
	if share < 0.01 || share > 0.6 || len(colors) < 8 {
		t.Errorf("%s looks blank or broken: %.1f%% ink, %d colours", name, 100*share, len(colors))
	}
	if red := colourShare(img, func(r, g, b uint32) bool { return r > 0x9000 && g < 0x5000 && b < 0x5000 }); red == 0 {
		t.Errorf("%s: no red at all (the rejected series, the High badges)", name)
	}
	if dir := os.Getenv("FLOWGUARD_SCREENSHOTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func colourShare(img image.Image, match func(r, g, b uint32) bool) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			if match(r, g, bl) {
				n++
			}
		}
	}
	return n
}

// chartValues returns the data-value of the plotted points of the first
// SVG chart matching sel.
func chartValues(ctx context.Context, sel string) ([]float64, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[[]float64](fmt.Sprintf(
		`Array.from((document.querySelector(%q) || {querySelectorAll: () => []}).querySelectorAll("circle.pt, rect.bar")).map(c => Number(c.getAttribute("data-value")))`, sel)))
}

// plotted returns the values of the chart sel (the test fails when they
// cannot be read) and how many of them are above zero.
func plotted(t *testing.T, ctx context.Context, sel string) ([]float64, int) {
	t.Helper()
	vals, err := chartValues(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	positive := 0
	for _, v := range vals {
		if v > 0 {
			positive++
		}
	}
	return vals, positive
}

// a11yCheck lists, on the current page, the form controls without a
// label, the buttons and links without a name, and the charts without a
// title: what a screen reader user would miss.
const a11yCheck = `(() => {
  const out = [];
  for (const e of document.querySelectorAll("input, select, textarea")) {
    if (!(e.id && document.querySelector('label[for="' + e.id + '"]')) && !e.getAttribute("aria-label")) out.push("control " + (e.id || e.tagName) + " has no label");
  }
  for (const e of document.querySelectorAll("button, a")) {
    if (!(e.textContent.trim() || e.getAttribute("aria-label"))) out.push(e.tagName + " has no name");
  }
  for (const e of document.querySelectorAll("svg.chart")) {
    if (!e.querySelector("title") || !e.getAttribute("aria-label")) out.push("a chart has no title");
  }
  if (!document.documentElement.lang) out.push("the page has no lang");
  return out;
})()`

func checkA11y(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	probs, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](a11yCheck))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Errorf("%s: %s", page, p)
	}
}

// waitFor polls a JavaScript condition until it is true.
func waitFor(t *testing.T, ctx context.Context, what, js string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("Boolean("+js+")"))
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (status line: %q)", timeout, what, text(t, ctx, "#status"))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestDashboardLiveDemo is the README's first command seen in a browser:
// flowguard demo starts, the dashboard shows traffic, the labelled port
// scan becomes a finding and a dry-run block within a minute of its start,
// the finding page shows the actor's flows, archiving it with the token
// works, and the classic query runs from one click.
func TestDashboardLiveDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the live demo for about a minute")
	}
	ctx := browser(t)
	bin := flowguardBinary(t)
	cmd := exec.Command(bin, "demo", "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := newSyncBuffer()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	// The demo prints the address, the token and the attack schedule.
	var url, token, scanLine string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && (url == "" || token == "" || scanLine == "") {
		line := sc.Text()
		if m := regexp.MustCompile(`http://127\.0\.0\.1:\d+/`).FindString(line); m != "" && url == "" {
			url = m
		}
		if _, tok, ok := strings.Cut(line, "API token (for archive, suppress, unblock and queries): "); ok {
			token = tok
		}
		if strings.Contains(line, "Recon:EC2/Portscan") && strings.Contains(line, "198.51.100.23") {
			scanLine = line
		}
	}
	go io.Copy(io.Discard, stdout)
	if url == "" || token == "" || scanLine == "" {
		t.Fatalf("the demo did not print its address, token and the scan's time:\nurl %q token %q scan %q\n%s", url, token, scanLine, stderr)
	}
	scanAt, err := time.Parse("15:04:05", strings.Fields(scanLine)[0])
	if err != nil {
		t.Fatalf("scan line %q: %v", scanLine, err)
	}
	now := time.Now().UTC()
	scanAt = time.Date(now.Year(), now.Month(), now.Day(), scanAt.Hour(), scanAt.Minute(), scanAt.Second(), 0, time.UTC)
	if scanAt.Before(now.Add(-12 * time.Hour)) { // printed just after midnight
		scanAt = scanAt.Add(24 * time.Hour)
	} else if scanAt.After(now.Add(12 * time.Hour)) {
		scanAt = scanAt.Add(-24 * time.Hour)
	}
	if scanAt.Before(now.Add(-time.Minute)) || scanAt.After(now.Add(time.Minute)) {
		t.Fatalf("the scan is planned at %s, not within a minute of now (%s)", scanAt.Format(time.TimeOnly), now.Format(time.TimeOnly))
	}

	// Overview: traffic flows, then the scan is a finding and a dry-run
	// block, within a minute of its start.
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("the dashboard did not load: %v\n%s", err, stderr)
	}
	waitFor(t, ctx, "records in the chart", `document.querySelectorAll("svg.chart circle.pt.records").length >= 5`, 20*time.Second)
	vals, positive := plotted(t, ctx, "svg.chart")
	if positive < 5 {
		t.Errorf("the records-per-second chart has %d points with data: %v", positive, vals)
	}
	waitFor(t, ctx, "the scan as a finding", `Array.from(document.querySelectorAll("a.finding-link")).some(a => a.textContent.includes("198.51.100.23 scanned"))`,
		max(time.Until(scanAt.Add(time.Minute)), 5*time.Second))
	waitFor(t, ctx, "the scan's dry-run block", `document.querySelector("main").textContent.includes("198.51.100.23/32") && document.querySelector("main").textContent.includes("would block")`,
		max(time.Until(scanAt.Add(time.Minute)), 5*time.Second))
	t.Logf("the scan was a finding and a dry-run block %s after its start", time.Since(scanAt).Round(time.Second))
	checkScreenshot(t, "dashboard-overview.png", screenshot(t, ctx))
	checkA11y(t, ctx, "overview")

	// The finding page: evidence, the actor's flows, archive with the
	// token.
	js(t, ctx, fmt.Sprintf(`document.querySelector("#token").value = %q; document.querySelector("#token-form").requestSubmit()`, token))
	js(t, ctx, `Array.from(document.querySelectorAll("a.finding-link")).find(a => a.textContent.includes("198.51.100.23 scanned")).click()`)
	waitFor(t, ctx, "the finding page", `document.querySelector("#archive")`, 10*time.Second)
	waitFor(t, ctx, "the actor's flows", `document.querySelectorAll("main svg.chart circle.pt").length > 0`, 30*time.Second)
	page := text(t, ctx, "main")
	for _, want := range []string{"Recon:EC2/Portscan", "distinct_ports", "min_ports", "198.51.100.23", "10.0.1.10", "REJECT",
		"Records the detector kept", "flowlogs.log:", "As flowguard detect --explain prints it"} {
		if !strings.Contains(page, want) {
			t.Errorf("the finding page lacks %q", want)
		}
	}
	if ex := text(t, ctx, "#explain-text"); !strings.Contains(ex, "  thresholds: ") || !strings.Contains(ex, "min_ports=") {
		t.Errorf("the --explain text on the finding page: %q", ex)
	}
	checkScreenshot(t, "dashboard-finding.png", screenshot(t, ctx))
	checkA11y(t, ctx, "finding")
	hash, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash`))
	if err != nil {
		t.Fatal(err)
	}
	js(t, ctx, `document.querySelector("#archive").click()`)
	waitFor(t, ctx, "the finding archived", `(document.querySelector("#finding-state") || {}).textContent === "archived"`, 10*time.Second)
	id := strings.TrimPrefix(hash, "#/finding/")
	resp, err := http.Get(url + "api/v1/findings/" + id)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Archived bool `json:"archived"`
	}
	json.NewDecoder(resp.Body).Decode(&f)
	resp.Body.Close()
	if !f.Archived {
		t.Errorf("the API says finding %s is not archived", id)
	}

	// The query page: the seed query, one click away; a bin() query as a
	// chart.
	js(t, ctx, `location.hash = "#/query"`)
	waitFor(t, ctx, "the query page", `document.querySelector("#seed")`, 10*time.Second)
	js(t, ctx, `document.querySelector("#seed").click()`)
	waitFor(t, ctx, "the seed query's result", `document.querySelector("#query-result table") && document.querySelector("#query-result").textContent.includes("198.51.100.23")`, 30*time.Second)
	js(t, ctx, `document.querySelector("#query-text").value = 'filter action = "REJECT" | stats count(*) as rejects by bin(1m)'; document.querySelector("#run-query").click()`)
	waitFor(t, ctx, "the bin() chart", `document.querySelectorAll("#query-result svg.chart circle.pt").length >= 3`, 30*time.Second)
	if vals, _ := chartValues(ctx, "#query-result svg.chart"); len(vals) < 3 || vals[0] <= 0 {
		t.Errorf("the query chart's points: %v", vals)
	}
	checkScreenshot(t, "dashboard-query.png", screenshot(t, ctx))
	checkA11y(t, ctx, "query")

	// Blocks and audit: the dry-run block and the archive just done.
	js(t, ctx, `location.hash = "#/blocks"`)
	waitFor(t, ctx, "the blocks page", `document.querySelector("main").textContent.includes("Audit trail")`, 10*time.Second)
	page = text(t, ctx, "main")
	for _, want := range []string{"Would block (dry run)", "198.51.100.23/32", "block-dry-run", "archive", id} {
		if !strings.Contains(page, want) {
			t.Errorf("the blocks and audit page lacks %q", want)
		}
	}
	checkA11y(t, ctx, "blocks")

	// The time range picker: the last hour's chart starts earlier than
	// the last 15 minutes' (the demo wrote more than 15 minutes of
	// history). Compared as times, not as the axis's HH:MM labels,
	// which wrap at midnight.
	js(t, ctx, `location.hash = "#/"`)
	waitFor(t, ctx, "the overview again", `document.querySelectorAll("svg.chart circle.pt.records").length >= 5`, 20*time.Second)
	const firstTime = `Number(document.querySelector("svg.chart").dataset.start)`
	start15, err := chromedp.Run(ctx, chromedp.Evaluate[float64](firstTime))
	if err != nil {
		t.Fatal(err)
	}
	js(t, ctx, `const r = document.querySelector("#range"); r.value = "1h"; r.dispatchEvent(new Event("change"))`)
	waitFor(t, ctx, "the last hour's chart", fmt.Sprintf(`%s < %d`, firstTime, int64(start15)), 20*time.Second)
	if bad := foreignRequests(t, ctx, strings.TrimSuffix(url, "/")); len(bad) > 0 {
		t.Errorf("the dashboard asked other origins for: %v", bad)
	}
}

// TestReportInBrowser renders flowguard report over generated traffic in
// Chromium, offline: its charts hold data, and its CSV files have the
// same numbers as its tables and the input.
func TestReportInBrowser(t *testing.T) {
	ctx := browser(t)
	dir := t.TempDir()
	const records = 30000
	cfg := synth.DefaultConfig()
	cfg.Records = records
	logPath, _ := writeGenerated(t, cfg, false)
	htmlPath, csvDir := filepath.Join(dir, "report.html"), filepath.Join(dir, "csv")
	_, stderr, code := execute(t, "", "report", "--out", htmlPath, "--csv", csvDir, "--home", "10.0.0.0/16", logPath)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "9/9 findings") {
		t.Errorf("no progress lines on standard error: %s", stderr)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+htmlPath)); err != nil {
		t.Fatal(err)
	}
	for _, sel := range []string{"#traffic svg", "#rejected svg", "#rejected_sources svg", "#top_talkers svg", "#dst_ports svg", "#protocols svg", "#interfaces svg", "#sources svg"} {
		if vals, pos := plotted(t, ctx, sel); pos < 2 {
			t.Errorf("%s: %d plotted values with data: %v", sel, pos, vals)
		}
	}
	checkScreenshot(t, "report.png", screenshot(t, ctx))
	checkA11y(t, ctx, "report")
	if bad := foreignRequests(t, ctx, "file://"); len(bad) > 0 {
		t.Errorf("the report asked for: %v", bad)
	}

	// The CSV files: every record is counted once in traffic.csv, and
	// rejected_sources.csv holds the rows the page shows.
	rows := readCSV(t, filepath.Join(csvDir, "traffic.csv"))
	if strings.Join(rows[0], ",") != "time,action,records,bytes" {
		t.Fatalf("traffic.csv header: %v", rows[0])
	}
	sum := 0
	for _, r := range rows[1:] {
		n, err := strconv.Atoi(r[2])
		if err != nil {
			t.Fatalf("traffic.csv: records %q: %v", r[2], err)
		}
		sum += n
	}
	if sum != records {
		t.Errorf("traffic.csv counts %d records, the input holds %d", sum, records)
	}
	page, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll("#rejected_sources tbody tr")).map(tr => Array.from(tr.cells).map(td => td.textContent))`))
	if err != nil {
		t.Fatal(err)
	}
	csvRows := readCSV(t, filepath.Join(csvDir, "rejected_sources.csv"))[1:]
	if len(page) == 0 || fmt.Sprint(page) != fmt.Sprint(csvRows) {
		t.Errorf("the page's top rejected sources differ from rejected_sources.csv:\npage %v\ncsv  %v", page, csvRows)
	}
	if rows := readCSV(t, filepath.Join(csvDir, "findings.csv")); len(rows) < 4 {
		t.Errorf("findings.csv has %d rows", len(rows))
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(rows) == 0 {
		t.Fatalf("%s is empty", path)
	}
	return rows
}
