package detect

import (
	"context"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// TestPeekIsCumulative: a finding that a closed window raised and an open
// window raises again is peeked as it stands — the closed count plus the
// open window's — with the id and count the open window's closing gives;
// the closed finding itself is unchanged by the Peek.
func TestPeekIsCumulative(t *testing.T) {
	e, err := New(Options{Settings: DefaultSettings(), Home: home})
	if err != nil {
		t.Fatal(err)
	}
	scan := func(at int) []rec {
		var rs []rec
		for p := 1; p <= 20; p++ {
			rs = append(rs, rec{src: "198.51.100.23", dst: "10.0.1.10", sp: 40000, dp: p, pk: 1, by: 44, st: at + p, en: at + p, act: "REJECT", flags: 2})
		}
		return rs
	}
	run := func(name string, rs []rec) {
		t.Helper()
		if err := e.Run(context.Background(), &flowlog.Scanner{Workers: 1}, []flowlog.Input{input(name, records(rs))}); err != nil {
			t.Fatal(err)
		}
	}
	run("first.log", scan(0))
	// Three hours later: the first window is judged, the second is open.
	run("second.log", scan(3*3600))
	closed := e.Results()
	if len(closed) != 1 || closed[0].Type != TypePortscan || closed[0].Count != 20 {
		t.Fatalf("closed: %+v, want the first scan", closed)
	}
	peeked := e.Peek()
	if len(peeked) != 1 || peeked[0].ID != closed[0].ID || peeked[0].Count != 40 {
		t.Fatalf("Peek: %+v, want the same finding counting 40", peeked)
	}
	if c := e.Closed(closed[0].ID); c == nil || c.Count != 20 {
		t.Fatalf("after Peek the closed finding is %+v, want it unchanged (20)", c)
	}
	e.Flush()
	if rs := e.Results(); len(rs) != 1 || rs[0].Count != 40 {
		t.Errorf("after Flush: %+v, want the peeked count", rs)
	}
}
