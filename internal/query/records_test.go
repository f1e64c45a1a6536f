package query

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// recordList is a RecordSource over records in memory.
type recordList []*Record

func (l recordList) Records(ctx context.Context, fn func(*Record) error) error {
	for _, r := range l {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// TestRunRecords: records of other sources than flow logs run through the
// same engine: fields by name (case aside), numbers compare as numbers,
// absent fields are null, an empty JSON key is no column, @timestamp and
// @message are the record's time and text, batches of more than
// recordsPerBatch records and a change of source keep the order.
func TestRunRecords(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var recs recordList
	var bigErrors, okClean int // the answers, counted here
	for i := range 2*recordsPerBatch + 10 {
		if i%10 == 0 && i%3 != 0 {
			bigErrors++ // errorCode, and n is 11 or 111
		}
		if i%10 != 0 && i%2 == 0 {
			okClean++
		}
		fields := map[string]any{"eventName": "Call", "n": json.Number(strings.Repeat("1", 1+i%3)), "": "empty key", "ok": i%2 == 0}
		if i%10 == 0 {
			fields["errorCode"] = "AccessDenied"
		}
		src := "a.json"
		if i >= recordsPerBatch+5 {
			src = "b.json"
		}
		recs = append(recs, &Record{Fields: fields, Time: t0.Add(time.Duration(i) * time.Second), Message: []byte(`{"i":` + json.Number(strings.Repeat("1", 1)).String() + `}`), Source: src})
	}
	run := func(q string) *Table {
		t.Helper()
		p, err := Compile(q, Options{})
		if err != nil {
			t.Fatal(err)
		}
		tab, err := p.RunRecords(context.Background(), recs)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return tab
	}
	if tab := run(`filter n > 5 and ispresent(errorCode) | stats count(*) as c`); tab.Rows[0][0].String() != strconv.Itoa(bigErrors) {
		t.Errorf("numbers compared as numbers: %v, want %d", tab.Rows, bigErrors)
	}
	if tab := run(`filter not ispresent(errorcode) and OK = "true" | stats count() as c`); tab.Rows[0][0].String() != strconv.Itoa(okClean) {
		t.Errorf("absent fields, names without regard to case, booleans: %v, want %d", tab.Rows, okClean)
	}
	tab := run(`fields @timestamp, @message, eventName | limit 3`)
	if len(tab.Rows) != 3 || tab.Rows[2][0].String() != "2026-11-22 10:00:02.000" || tab.Rows[0][1].String() != `{"i":1}` || tab.Rows[0][2].String() != "Call" {
		t.Errorf("pseudo fields: %v", tab.Rows)
	}
	tab = run(`fields @timestamp | sort @timestamp desc | limit 1`)
	if tab.Rows[0][0].String() != t0.Add(time.Duration(len(recs)-1)*time.Second).Format("2006-01-02 15:04:05.000") {
		t.Errorf("last record: %v", tab.Rows)
	}
	tab = run(`fields @timestamp`)
	if len(tab.Rows) != len(recs) {
		t.Fatalf("%d rows, want %d", len(tab.Rows), len(recs))
	}
	for i, r := range tab.Rows {
		if want := t0.Add(time.Duration(i) * time.Second).Format("2006-01-02 15:04:05.000"); r[0].String() != want {
			t.Fatalf("row %d: %s, want %s (record order)", i, r[0].String(), want)
		}
	}
}
