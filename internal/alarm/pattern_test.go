package alarm

import (
	"errors"
	"strings"
	"testing"
)

// flowPattern is the classic VPC flow log REJECT filter over the default v2
// format.
const flowPattern = `[version, account, eni, source, destination, srcport, destport, protocol, packets, bytes, windowstart, windowend, action="REJECT", flowlogstatus]`

const (
	rejectLine = "2 123456789010 eni-1235b8ca123456789 203.0.113.12 172.31.16.139 0 0 1 4 336 1432917027 1432917142 REJECT OK"
	acceptLine = "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"
	nodataLine = "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA"
)

func TestMatchExamples(t *testing.T) {
	// Log events of the CloudWatch Logs documentation's examples.
	apache := `127.0.0.1 Prod frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534`
	jsonEvent := `{"eventType": "UpdateTrail", "sourceIPAddress": "111.111.111.111", "arrayKey": ["value", "another value"], "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}], "SomeObject": null, "ThisFlag": true}`
	compound := `{"user": {"id": 1, "email": "John.Stiles@example.com"}, "users": [{"id": 2, "email": "John.Doe@example.com"}, {"id": 3, "email": "Jane.Doe@example.com"}], "actions": ["GET", "PUT", "DELETE"], "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]]}`
	tests := []struct {
		pattern string
		line    string
		want    bool
	}{
		// Term patterns.
		{`ERROR`, `[ERROR 400] BAD REQUEST`, true},
		{`ERROR`, `Exiting with ERRORCODE: -1`, true}, // terms match as substrings
		{`ERROR`, `error`, false},                     // case sensitive
		{`ERROR ARGUMENTS`, `[ERROR 419] MISSING ARGUMENTS`, true},
		{`ERROR ARGUMENTS`, `[ERROR 400] BAD REQUEST`, false},
		{`?ERROR ?ARGUMENTS`, `[ERROR 400] BAD REQUEST`, true},
		{`?ERROR ?WARN`, `WARN message`, true},
		{`?ERROR ?WARN`, `INFO message`, false},
		{`"INTERNAL SERVER ERROR"`, `[ERROR 500] INTERNAL SERVER ERROR`, true},
		{`"INTERNAL SERVER ERROR"`, `[ERROR 500] INTERNAL ERROR SERVER`, false},
		{`ERROR -ARGUMENTS`, `[ERROR 400] BAD REQUEST`, true},
		{`ERROR -ARGUMENTS`, `[ERROR 420] INVALID ARGUMENTS`, false},
		{`"ERROR" - "Exiting"`, `Exiting with ERRORCODE: -1`, false},
		{`ERROR -WARN`, `ERROR message`, true},
		{`ERROR -WARN`, `ERROR WARN message`, false},
		{`" "`, `anything`, true},
		{``, `anything`, true},
		{`?"ERROR" "MainThread" ?"WARN" "Deadlock"`, `WARN Deadlock in pool`, true},
		{`?"ERROR" "MainThread" ?"WARN" "Deadlock"`, `ERROR in worker`, false},
		{`%ERROR [0-9]{3}%`, `[ERROR 404] x`, true},
		{`%ERROR [0-9]{3}%`, `[ERROR 4O4] x`, false},

		// Space-delimited patterns.
		{`[ip, user, username, timestamp, request =*.html*, status_code = 4*, bytes]`, apache, true},
		{`[ip, user, username, timestamp, request =*.gif*, status_code = 4*, bytes]`, apache, false},
		{`[..., request =*.html*, status_code = 4*, bytes]`, apache, true},
		{`[ip, user, ...]`, apache, true},
		{`[ip, user]`, apache, false}, // 7 fields, no ellipsis
		{`[ip, user, username, timestamp, request, status_code = 404 || status_code = 410, bytes]`, apache, true},
		{`[ip, user, username, timestamp, request, status_code = 403 || status_code = 410, bytes]`, apache, false},
		{`[ip, user, username, timestamp, request, status_code = 4* && bytes > 1000, bytes]`, apache, true},
		{`[ip, user, username, timestamp, request, status_code = 4* && bytes > 2000, bytes]`, apache, false},
		{`[ip, user, username, timestamp, request, status_code = 4* && status_code != 404, bytes]`, apache, false},
		{`[ip, user, username, timestamp, request, status_code, bytes >= 1534]`, apache, true},
		{`[ip, user, username, timestamp, request, status_code, bytes < 1534]`, apache, false},
		{`[ip, user, username, timestamp = "10/Oct/2000:13:25:15 -0700", request, status_code, bytes]`, apache, true},
		{`[ip, user, username, timestamp, request = "GET /index.html HTTP/1.0", status_code, bytes]`, apache, true},
		{`[..., request=*.html*, status_code=4*,]`, apache, true}, // trailing comma: an unnamed last field
		{`[w1=ERROR, w2]`, `ERROR message`, true},
		{`[w1=ERROR, w2]`, `ERROR WARN message`, false},
		{`[w1=ERROR || W1=WARNING, w2]`, `WARNING message`, true},
		{`[w1!=ERROR && w1!=WARNING, w2]`, `INFO message`, true},
		{`[w1!=ERROR && w1!=WARNING, w2]`, `ERROR message`, false},
		{flowPattern, rejectLine, true},
		{flowPattern, acceptLine, false},
		{flowPattern, nodataLine, false},
		{`[version, account, eni, source, destination, srcport, destport="22", protocol="6", packets, bytes, windowstart, windowend, action="REJECT", flowlogstatus]`, rejectLine, false},
		{`[version, account, eni, source, destination, srcport, destport=22, protocol=6, ...]`, acceptLine, true},
		{`[..., action=REJECT, status]`, rejectLine, true},
		{`[v, a, e, source=203.0.113.*, ...]`, rejectLine, true},
		{`[v, a, e, source=10.*, ...]`, rejectLine, false},
		{`[v, a, e, s, d, sp, dp, pr, packets > 3, ...]`, rejectLine, true},
		{`[v, a, e, s, d, sp, dp, pr, packets > 3, ...]`, nodataLine, false}, // "-" is not a number
		{`[v, a, e, s, d, sp, dp, pr, packets = *, ...]`, nodataLine, true},
		{`[v, a, e, s, d, sp, dp, pr, packets != 4, ...]`, rejectLine, false},
		{`[..., status = %^N.DATA$%]`, nodataLine, true},
		{`[v, a, e, s, d, sp, dp, pr, p, bytes = 3.36e2, ...]`, rejectLine, true},

		// JSON patterns.
		{`{ $.eventType = "UpdateTrail" }`, jsonEvent, true},
		{`{ $.eventType = UpdateTrail }`, jsonEvent, true},
		{`{ $.eventType = "Update*" }`, jsonEvent, true},
		{`{ $.eventType = "*Trail" }`, jsonEvent, true},
		{`{ $.eventType != "UpdateTrail" }`, jsonEvent, false},
		{`{ $.sourceIPAddress != 123.123.* }`, jsonEvent, true},
		{`{ $.arrayKey[0] = "value" }`, jsonEvent, true},
		{`{ $.arrayKey[1] = "value" }`, jsonEvent, false},
		{`{ $.objectList[1].id = 2 }`, jsonEvent, true},
		{`{ $.objectList[1].id > 1 }`, jsonEvent, true},
		{`{ $.objectList[1].id >= 3 }`, jsonEvent, false},
		{`{ $.SomeObject IS NULL }`, jsonEvent, true},
		{`{ $.eventType IS NULL }`, jsonEvent, false},
		{`{ $.SomeOtherObject NOT EXISTS }`, jsonEvent, true},
		{`{ $.eventType NOT EXISTS }`, jsonEvent, false},
		{`{ $.eventType EXISTS }`, jsonEvent, true},
		{`{ $.ThisFlag IS TRUE }`, jsonEvent, true},
		{`{ $.ThisFlag IS FALSE }`, jsonEvent, false},
		{`{ $.arrayKey = "value" }`, jsonEvent, false},  // an array is not a value node
		{`{ $.arrayKey != "value" }`, jsonEvent, false}, // neither = nor != match
		{`{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }`, compound, true},
		{`{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch" && $.actions[2] = "nonmatch" }`, compound, true},
		{`{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch") && $.actions[2] = "nonmatch" }`, compound, false},
		{`{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }`, compound, false},
		{`{ $.coordinates[2][0] = 7 }`, compound, true},
		{`{ $.user.id = 1 }`, `not json`, false},
	}
	for _, tt := range tests {
		p, err := ParseFilterPattern(tt.pattern)
		if err != nil {
			t.Errorf("ParseFilterPattern(%q): %v", tt.pattern, err)
			continue
		}
		if got := p.Match([]byte(tt.line)); got != tt.want {
			t.Errorf("%q on %q: got %v, want %v", tt.pattern, tt.line, got, tt.want)
		}
		var f Fields
		if got := p.MatchFields([]byte(tt.line), &f); got != tt.want {
			t.Errorf("MatchFields %q on %q: got %v, want %v", tt.pattern, tt.line, got, tt.want)
		}
	}
}

// The documentation's example of extracted fields: named fields and $N for
// the ones the ellipsis and the trailing comma cover.
func TestExtractedFields(t *testing.T) {
	line := []byte(`127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534`)
	p := MustParseFilterPattern(`[..., request=*.html*, status_code=4*,]`)
	var f Fields
	if !p.MatchFields(line, &f) {
		t.Fatal("no match")
	}
	want := map[string]string{
		"$status_code": "404",
		"$request":     "GET /index.html HTTP/1.0",
		"$7":           "1534",
		"$4":           "10/Oct/2000:13:25:15 -0700",
		"$3":           "frank",
		"$2":           "-",
		"$1":           "127.0.0.1",
	}
	for ref, w := range want {
		got, ok := f.Lookup(ref)
		if !ok || got != w {
			t.Errorf("%s = %q (%v), want %q", ref, got, ok, w)
		}
	}
	if _, ok := f.Lookup("$8"); ok {
		t.Error("$8 exists")
	}
	jp := MustParseFilterPattern(`{ $.latency > 0 }`)
	if !jp.MatchFields([]byte(`{"latency": 250, "code": "E42"}`), &f) {
		t.Fatal("json no match")
	}
	if got, _ := f.Lookup("$.latency"); got != "250" {
		t.Errorf("$.latency = %q", got)
	}
	if got, _ := f.Lookup("$.code"); got != "E42" {
		t.Errorf("$.code = %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		pattern  string
		column   int
		expected string
	}{
		{`[a, b`, 6, "',' or ']'"},
		{`[a, b = ]`, 9, "a value after '='"},
		{`[a, b > x]`, 9, "a number after '>'"},
		{`[a, b ~ 1]`, 7, "comparison operator"},
		{`[a, b = 1 && c = 2]`, 14, "the name of a field"},
		{`[a, ..., b, ...]`, 13, "at most one '...'"},
		{`[a] x`, 5, "end of pattern"},
		{`{ $.a = 1 `, 11, "'}'"},
		{`{ a = 1 }`, 3, "'$.'"},
		{`{ $.a ~ 1 }`, 7, "a comparison"},
		{`{ $.a[x] = 1 }`, 7, "an array index"},
		{`"unterminated`, 1, "closing '\"'"},
		{`%[%`, 1, "valid regular expression"},
		{`ERROR ?`, 8, "a term after '?'"},
		{`[]`, 2, "at least one field"},
		{`[a, b = 1 || (b = 2]`, 20, "')'"},
		{`{ ($.a = 1 || $.b = 2 }`, 23, "')'"},
	}
	for _, tt := range tests {
		_, err := ParseFilterPattern(tt.pattern)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: got %v, want a SyntaxError", tt.pattern, err)
			continue
		}
		if se.Column != tt.column || !strings.Contains(se.Expected, tt.expected) {
			t.Errorf("%q: got column %d expected %q (%v); want column %d expected ~%q", tt.pattern, se.Column, se.Expected, err, tt.column, tt.expected)
		}
	}
	if _, err := ParseFilterPattern(strings.Repeat("a", 1025)); err == nil {
		t.Error("1025-byte pattern accepted")
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	cases := []struct{ pattern, line string }{
		{flowPattern, rejectLine},
		{flowPattern, acceptLine},
		{`[..., action="REJECT", status] `, rejectLine},
		{`[v, a, e, s, d, sp, dp=22 || dp=3389, pr, packets > 3 && bytes >= 100, bytes, ...]`, acceptLine},
		{`?REJECT ?NODATA -SKIPDATA`, acceptLine},
	}
	for _, c := range cases {
		p := MustParseFilterPattern(c.pattern)
		line := []byte(c.line)
		if n := testing.AllocsPerRun(200, func() { p.Match(line) }); n != 0 {
			t.Errorf("Match(%q) allocates %v times", c.pattern, n)
		}
		var f Fields
		p.MatchFields(line, &f)
		if n := testing.AllocsPerRun(200, func() { p.MatchFields(line, &f) }); n != 0 {
			t.Errorf("MatchFields(%q) allocates %v times", c.pattern, n)
		}
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0", 0, true}, {"336", 336, true}, {"-5", -5, true}, {"+1000", 1000, true},
		{"1.5", 1.5, true}, {"10e3", 10000, true}, {"10e-3", 0.01, true}, {"1e+3", 1000, true},
		{".5", 0.5, true}, {"5.", 5, true},
		{"-", 0, false}, {"", 0, false}, {"1e", 0, false}, {"1.2.3", 0, false}, {"abc", 0, false},
		{"12345678901234567890", 12345678901234567890, true}, {"1e999", 0, false}, {"0x10", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseNumber([]byte(tt.in))
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseNumber(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseFilterPattern(f *testing.F) {
	for _, s := range []string{
		flowPattern, `ERROR`, `?ERROR ?WARN -DEBUG`, `"a b"`, `%x+%`, ``,
		`[..., request=*.html*, status_code=4*,]`, `[a, b = 1 || (a = 2 && b > 3)]`,
		`{ $.a.b[0] = "x" && ($.c > 1 || $.d IS NULL) }`, `{ $.e NOT EXISTS }`,
	} {
		f.Add(s, rejectLine)
	}
	f.Fuzz(func(t *testing.T, pattern, line string) {
		p, err := ParseFilterPattern(pattern)
		if err != nil {
			var se *SyntaxError
			if errors.As(err, &se) && (se.Column < 1 || se.Column > len(pattern)+1) {
				t.Fatalf("column %d out of range for %q", se.Column, pattern)
			}
			return
		}
		var fs Fields
		a := p.Match([]byte(line))
		b := p.MatchFields([]byte(line), &fs)
		if a != b {
			t.Fatalf("Match %v != MatchFields %v for %q on %q", a, b, pattern, line)
		}
		for i := 1; i <= fs.Len(); i++ {
			fs.Index(i)
		}
		for _, n := range p.FieldNames() {
			fs.Named(n)
		}
	})
}
