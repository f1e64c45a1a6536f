package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/synth"
)

// input is an in-memory flow log file.
func input(name string, data []byte) flowlog.Input {
	return flowlog.Input{Name: name, Size: int64(len(data)), Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

func generated(t testing.TB, records int) []byte {
	t.Helper()
	cfg := synth.DefaultConfig()
	cfg.Records = records
	var b bytes.Buffer
	if err := synth.New(cfg).WriteText(&b, false); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestComputeCountsEveryRecordOnceAndBadLinesOnce(t *testing.T) {
	data := generated(t, 20000)
	data = append(data, "2 not a record\n"...)
	skipped := &flowlog.Skipped{}
	var steps []string
	res, err := Compute(context.Background(), &flowlog.Scanner{Errors: skipped}, []flowlog.Input{input("flows.log", data)},
		Options{Bin: 5 * time.Minute, Progress: func(done, total int, name string) { steps = append(steps, name) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(Specs) || len(steps) != len(Specs) {
		t.Fatalf("%d tables, %d progress steps; want %d", len(res), len(steps), len(Specs))
	}
	if n := skipped.Count(); n != 1 {
		t.Errorf("the bad line was counted %d times, want once", n)
	}
	traffic := res[0].Table
	rc := traffic.Column("records")
	sum := int64(0)
	for _, r := range traffic.Rows {
		n, _ := r[rc].Int()
		sum += n
	}
	if sum != 20000 {
		t.Errorf("the traffic table counts %d records, want 20000", sum)
	}
	if _, err := Compute(context.Background(), &flowlog.Scanner{}, nil, Options{Names: []string{"nope"}}); err == nil {
		t.Error("an unknown table name was accepted")
	}
}

func TestRenderAndCSVHoldTheSameNumbers(t *testing.T) {
	data := generated(t, 20000)
	res, err := Compute(context.Background(), &flowlog.Scanner{}, []flowlog.Input{input("flows.log", data)}, Options{Bin: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	rep := &Report{Generated: time.Now(), Inputs: []string{"flows.log"}, Bin: 5 * time.Minute, Tables: res, FindingsFrom: "nowhere"}
	var html bytes.Buffer
	if err := Render(&html, rep); err != nil {
		t.Fatal(err)
	}
	page := html.String()
	// Self-contained: no script, nothing fetched.
	for _, bad := range []string{"<script", "src=", "href=\"http", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("the report contains %q", bad)
		}
	}
	// The rejected chart plots one point per row of rejected.csv, with
	// its value.
	dir := t.TempDir()
	if err := WriteCSV(dir, rep); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "rejected.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	sec := page[strings.Index(page, `<section id="rejected">`):]
	sec = sec[:strings.Index(sec, "</section>")]
	points := regexp.MustCompile(`<circle class="pt"[^>]* data-value="([0-9.e+]+)"`).FindAllStringSubmatch(sec, -1)
	if len(points) != len(rows)-1 || len(points) < 5 {
		t.Fatalf("%d points in the chart, %d rows in rejected.csv", len(points), len(rows)-1)
	}
	for i, p := range points {
		if p[1] != rows[i+1][1] {
			t.Errorf("point %d is %s, rejected.csv says %s", i, p[1], rows[i+1][1])
		}
	}
	for _, name := range []string{"traffic", "top_talkers", "sources", "dst_ports", "protocols", "interfaces", "findings", "blocks"} {
		if _, err := os.Stat(filepath.Join(dir, name+".csv")); err != nil {
			t.Errorf("no %s.csv: %v", name, err)
		}
	}
}

func TestChartsOfEmptyTablesSaySo(t *testing.T) {
	res, err := Compute(context.Background(), &flowlog.Scanner{}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var html bytes.Buffer
	if err := Render(&html, &Report{Generated: time.Now(), Tables: res, Bin: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(html.String(), "no data in this period"); n != len(Specs) {
		t.Errorf("%d empty charts say so, want %d", n, len(Specs))
	}
}

func TestHumanNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 12: "12", 1.5: "1.50", 12345: "12.3k", 2.5e6: "2.50M", 7e9: "7.00G"} {
		if got := humanNum(v); got != want {
			t.Errorf("humanNum(%v) = %s, want %s", v, got, want)
		}
	}
}
