package cloudtrail

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/flowlog"
)

var testOptions = Options{
	Home:          []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")},
	SignInSources: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
}

// readEvents reads documents with a Reader, failing on skipped input.
func readEvents(t *testing.T, name string, data []byte) []Event {
	t.Helper()
	var evs []Event
	sk := &flowlog.Skipped{Keep: 10}
	r := &Reader{Event: func(e Event) error { evs = append(evs, e); return nil }, Errors: sk}
	if err := r.Read(name, data); err != nil {
		t.Fatal(err)
	}
	if sk.Count() > 0 {
		t.Fatalf("%s: skipped %v", name, sk.First())
	}
	return evs
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func detectAll(o Options, evs []Event) (*Detector, []finding.Finding) {
	d := New(o)
	for _, e := range evs {
		d.Add(e)
	}
	return d, d.Findings()
}

func types(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Type)
	}
	slices.Sort(out)
	return out
}

// TestDocumentedRecords runs each AWS-shaped record through the
// detections: the ordinary ones (MFA sign-in from the office, an SSO
// sign-in, one failed password, a narrow rule) raise nothing.
func TestDocumentedRecords(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"signin-iamuser-mfa.json", nil},
		{"signin-sso-assumedrole.json", nil},
		{"signin-iamuser-failure.json", nil},
		{"api-authorize-sg-narrow.json", nil},
		{"signin-iamuser-nomfa.json", []string{TypeNoMFA}},
		{"signin-root-mfa.json", []string{TypeRoot}},
		{"api-authorize-sg-world.json", []string{TypeSecurityGroupOpen}},
		{"api-logging-off.json", []string{TypeRoot, TypeFlowLogsDeleted, TypeCloudTrailDisabled, TypeCloudTrailDisabled}},
		{"api-nacl-route.json", []string{TypeNetworkACLOpen, TypeRouteOpen}},
		{"api-guardduty.json", []string{TypeGuardDutyArchived, TypeGuardDutyDetector, TypeGuardDutyFeedback, TypeGuardDutyFilter}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, fs := detectAll(testOptions, readEvents(t, tc.file, fixture(t, tc.file)))
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if got := types(fs); !slices.Equal(got, want) {
				for _, f := range fs {
					t.Logf("%s %s", f.Type, f.Title)
				}
				t.Fatalf("types %v, want %v", got, want)
			}
			for _, f := range fs {
				if f.Actor.User == "" || f.ID == "" || f.Count < 1 || f.FirstSeen.IsZero() {
					t.Errorf("%s: incomplete finding %+v", f.Type, f)
				}
			}
		})
	}
}

func TestSecurityGroupOpened(t *testing.T) {
	_, fs := detectAll(testOptions, readEvents(t, "sg", fixture(t, "api-authorize-sg-world.json")))
	f := fs[0]
	if f.Severity != finding.High || !slices.Equal(f.Target.Ports, []uint16{22}) || f.Target.Resource != "sg-0123456789abcdef0" {
		t.Errorf("got severity %v ports %v resource %q", f.Severity, f.Target.Ports, f.Target.Resource)
	}
	if f.Actor.User != "arn:aws:sts::111122223333:assumed-role/Ops/ops" || f.Actor.IP != netip.MustParseAddr("203.0.113.20") {
		t.Errorf("actor %+v", f.Actor)
	}
	if cidrs := f.Evidence["cidrs"].([]string); !slices.Equal(cidrs, []string{"0.0.0.0/0", "::/0"}) {
		t.Errorf("cidrs %v", cidrs)
	}
}

func TestFlowLogsDeletedNamesIDsAndFederatedUser(t *testing.T) {
	_, fs := detectAll(testOptions, readEvents(t, "x", fixture(t, "api-logging-off.json")))
	for _, f := range fs {
		if f.Type != TypeFlowLogsDeleted {
			continue
		}
		if f.Actor.User != "arn:aws:sts::111122223333:federated-user/Bob" {
			t.Errorf("user %q", f.Actor.User)
		}
		if ids := f.Evidence["flow_log_ids"].([]string); !slices.Equal(ids, []string{"fl-0123456789abcdef0"}) {
			t.Errorf("flow log ids %v", ids)
		}
		return
	}
	t.Fatal("no FlowLogsDeleted finding")
}

func TestGuardDutyChangesWhoArchivedWhat(t *testing.T) {
	d, fs := detectAll(testOptions, readEvents(t, "x", fixture(t, "api-guardduty.json")))
	if len(d.Changes) != 2 {
		t.Fatalf("changes %+v", d.Changes)
	}
	a, fb := d.Changes[0], d.Changes[1]
	if a.Action != "archive" || a.User != "arn:aws:sts::111122223333:assumed-role/SecOps/mallory" || len(a.FindingIDs) != 2 || a.DetectorID != "12abc34d567e8fa901bc2d34e56789f0" {
		t.Errorf("archive %+v", a)
	}
	if fb.Action != "feedback" || fb.Feedback != "NOT_USEFUL" || fb.FindingIDs[0] != "c8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d5" {
		t.Errorf("feedback %+v", fb)
	}
	for _, f := range fs {
		if f.Type == TypeGuardDutyArchived && len(f.Evidence["all_finding_ids"].([]string)) != 2 {
			t.Errorf("archived finding evidence %v", f.Evidence)
		}
		if f.Type == TypeGuardDutyDetector && f.Severity != finding.High {
			t.Errorf("detector disabled: severity %v", f.Severity)
		}
	}
}

// signIn returns a copy of the ordinary MFA sign-in, changed.
func signIn(t *testing.T, ip string, at time.Time, failed bool, user string) Event {
	e := readEvents(t, "x", fixture(t, "signin-iamuser-mfa.json"))[0]
	e.SourceIPAddress, e.EventTime = ip, at
	if user != "" {
		e.UserIdentity.UserName, e.UserIdentity.ARN = user, "arn:aws:iam::111122223333:user/"+user
	}
	if failed {
		e.ErrorMessage = "Failed authentication"
		e.ResponseElements = []byte(`{"ConsoleLogin":"Failure"}`)
		e.UserIdentity.ARN = ""
	}
	return e
}

func TestSignInSources(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	o := testOptions
	o.Threats = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	flow := finding.Finding{ID: "flow1", Type: "Recon:EC2/Portscan"}
	o.Attackers = map[netip.Addr][]finding.Finding{netip.MustParseAddr("198.51.100.23"): {flow}}
	for _, tc := range []struct {
		name string
		ip   string
		want []string
	}{
		{"expected office", "203.0.113.10", nil},
		{"outside expected", "198.51.100.77", []string{TypeUnexpectedSource}},
		{"threat list", "192.0.2.5", []string{TypeMaliciousIP, TypeUnexpectedSource}},
		{"attacks us in the flow logs", "198.51.100.23", []string{TypeFromAttacker, TypeUnexpectedSource}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, fs := detectAll(o, []Event{signIn(t, tc.ip, t0, false, "")})
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if got := types(fs); !slices.Equal(got, want) {
				t.Fatalf("types %v, want %v", got, want)
			}
			for _, f := range fs {
				if f.Type == TypeFromAttacker && !slices.Equal(f.Evidence["flow_findings"].([]string), []string{"flow1"}) {
					t.Errorf("join evidence %v", f.Evidence)
				}
			}
		})
	}
}

func TestBruteForce(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var evs []Event
	// One source tries 12 passwords in 6 minutes, then gets in.
	for i := range 12 {
		evs = append(evs, signIn(t, "198.51.100.23", t0.Add(time.Duration(i)*30*time.Second), true, "JohnDoe"))
	}
	evs = append(evs, signIn(t, "198.51.100.23", t0.Add(7*time.Minute), false, "JohnDoe"))
	// Eleven sources try one password each against Admin.
	for i := range 11 {
		evs = append(evs, signIn(t, fmt.Sprintf("192.0.2.%d", i+1), t0.Add(time.Duration(i)*time.Minute/2), true, "Admin"))
	}
	// Slow failures (one an hour) from a third source are no burst.
	for i := range 12 {
		evs = append(evs, signIn(t, "203.0.113.99", t0.Add(time.Duration(i)*time.Hour), true, "JaneDoe"))
	}
	o := testOptions
	o.SignInSources = nil
	_, fs := detectAll(o, evs)
	got := map[string]finding.Finding{}
	for _, f := range fs {
		got[f.Type] = f
	}
	if len(fs) != 2 {
		t.Fatalf("findings %v", types(fs))
	}
	src := got[TypeBruteForceSource]
	if src.Actor.IP != netip.MustParseAddr("198.51.100.23") || src.Count != 12 || src.Severity != finding.High || src.Evidence["succeeded_after"] != true || src.Actor.User != "JohnDoe" {
		t.Errorf("per source: %+v", src)
	}
	usr := got[TypeBruteForceUser]
	if usr.Actor.User != "Admin" || usr.Count != 11 || usr.Evidence["distinct_sources"] != 11 || usr.Actor.IP.IsValid() {
		t.Errorf("per user: %+v", usr)
	}
}

func TestReadShapes(t *testing.T) {
	// An S3 delivery file is gzip JSON {"Records": […]}.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(fixture(t, "api-logging-off.json"))
	zw.Close()
	in := flowlog.Input{Name: "111122223333_CloudTrail_us-east-1_20261122T1020Z_abc.json.gz", Size: -1,
		Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz.Bytes())), nil }}
	ok, err := SniffInput(context.Background(), in)
	if err != nil || !ok {
		t.Fatalf("sniff gzip delivery: %v %v", ok, err)
	}
	var n int
	r := &Reader{Event: func(e Event) error { n++; return nil }}
	if err := r.ReadInput(context.Background(), in); err != nil || n != 3 {
		t.Fatalf("read %d records, %v", n, err)
	}
	// EventBridge envelopes give their detail; lines follow each other.
	joined := append(append(fixture(t, "signin-iamuser-mfa.json"), '\n'), fixture(t, "signin-root-mfa.json")...)
	evs := readEvents(t, "joined", joined)
	secondLine := bytes.Count(fixture(t, "signin-iamuser-mfa.json"), []byte("\n")) + 2
	if len(evs) != 2 || evs[0].UserIdentity.UserName != "JaneDoe" || evs[1].UserIdentity.Type != "Root" || evs[1].Line != secondLine {
		t.Fatalf("joined: %d events, %+v", len(evs), evs)
	}
	for _, tc := range []struct {
		head string
		want bool
	}{
		{`{"Records":[{"eventVersion":"1.08"`, true},
		{`  {"version":"0","detail-type":"GuardDuty Finding"`, true},
		{"2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK", false},
		{"version account-id interface-id srcaddr dstaddr", false},
		{`{"messageType":"DATA_MESSAGE","logEvents":[]}`, false},
	} {
		if got := Sniff([]byte(tc.head)); got != tc.want {
			t.Errorf("Sniff(%q) = %v", tc.head, got)
		}
	}
}

// TestMalformed: a bad record is skipped with its file, line and column
// and the rest is read; broken JSON ends the file with its position.
func TestMalformed(t *testing.T) {
	var evs []Event
	sk := &flowlog.Skipped{Keep: 10}
	r := &Reader{Event: func(e Event) error { evs = append(evs, e); return nil }, Errors: sk}
	if err := r.Read("malformed.json", fixture(t, "malformed.json")); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[1].EventName != "DescribeVpcs" || evs[1].Line != 4 {
		t.Fatalf("events %+v", evs)
	}
	errs := sk.First()
	if sk.Count() != 2 || len(errs) != 2 {
		t.Fatalf("skipped %v", errs)
	}
	if e := errs[0]; e.Line != 3 || e.Column != 1 || !strings.Contains(e.Msg, "eventTime") {
		t.Errorf("bad record: %v", e)
	}
	if e := errs[1]; e.Line != 6 || e.Column < 60 || !strings.Contains(e.Msg, "malformed JSON") {
		t.Errorf("bad JSON: %v", e)
	}
	if s := errs[1].Error(); !strings.HasPrefix(s, "malformed.json:6:") {
		t.Errorf("message %q", s)
	}
	// Not JSON objects, or objects of another kind, are named too.
	sk2 := &flowlog.Skipped{Keep: 10}
	r2 := &Reader{Errors: sk2}
	r2.Read("other.json", []byte("[1,2]\n{\"foo\":1}\n{\"detail-type\":\"GuardDuty Finding\",\"detail\":{}}\n"))
	if sk2.Count() != 3 {
		t.Errorf("skipped %v", sk2.First())
	}
}
