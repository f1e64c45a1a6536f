package respond

import (
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/wafv2"
	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

const (
	testVPC    = "vpc-0123456789abcdef0"
	testSubnet = "subnet-0aaaaaaaaaaaaaaa1"
	testENI    = "eni-0a1b2c3d4e5f60001"
)

var (
	testHome  = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("2600:1f18:abc::/56")}
	testAllow = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
)

// recorder is a Notifier that keeps what it is sent; fail makes the next
// calls fail.
type recorder struct {
	name string
	mu   sync.Mutex
	msgs []Message
	fail int
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Notify(_ context.Context, m Message) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return true, errTest
	}
	r.msgs = append(r.msgs, m)
	return false, nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

type testErr struct{}

func (testErr) Error() string { return "503 from the test notifier" }

var errTest = testErr{}

// env is a pipeline wired to test servers through the real SDK.
type env struct {
	t      *testing.T
	ec2    *awstest.EC2
	waf    *awstest.WAFv2
	acl    string
	wafV4  string
	wafV6  string
	dbPath string
	st     *store.Store
	clock  *FakeClock
	sleeps []time.Duration
	cfg    *Config
	p      *Pipeline
	rec    *recorder
	extra  []Notifier // notifiers besides rec
}

// baseConfig blocks every finding type through the network ACL and
// notifies the recorder.
func baseConfig() *Config {
	return &Config{
		Mode:             ModeEnforce,
		AWSIPRanges:      filepath.Join("testdata", "ip-ranges.json"),
		MaxBlocksPerHour: 100,
		NACL:             &NACLConfig{},
		Routes:           []Route{{Name: "all", Types: []string{"*"}, Block: []string{NACLName}, Notify: []string{"rec"}}},
		Retry:            RetryConfig{MaxAttempts: 4},
	}
}

func newEnv(t *testing.T, mutate func(*Config)) *env {
	t.Helper()
	e := &env{t: t, ec2: awstest.NewEC2(t), waf: awstest.NewWAFv2(t), clock: NewFakeClock(t0), rec: &recorder{name: "rec"},
		dbPath: filepath.Join(t.TempDir(), "flowguard.db")}
	e.acl = e.ec2.AddNetworkACL(testVPC, testSubnet)
	e.ec2.AddNetworkInterface(awstest.NetworkInterface{ID: testENI, Subnet: testSubnet, VPC: testVPC, PrivateIP: "10.0.1.10"})
	e.wafV4 = e.waf.CreateIPSet("REGIONAL", "flowguard-v4", "IPV4")
	e.wafV6 = e.waf.CreateIPSet("REGIONAL", "flowguard-v6", "IPV6")
	e.cfg = baseConfig()
	if mutate != nil {
		mutate(e.cfg)
	}
	if err := e.cfg.Validate([]string{"rec"}); err != nil {
		t.Fatal(err)
	}
	e.start()
	return e
}

// start opens the store and builds a fresh pipeline: a new process.
func (e *env) start() {
	e.t.Helper()
	st, err := store.Open(context.Background(), e.dbPath)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	e.st = st
	var aws *AWSRanges
	if e.cfg.AWSIPRanges != "" {
		if aws, err = LoadAWSRanges(e.cfg.AWSIPRanges); err != nil {
			e.t.Fatal(err)
		}
	}
	g, err := NewGuards(e.cfg, testHome, testAllow, aws)
	if err != nil {
		e.t.Fatal(err)
	}
	var bl []Planner
	if e.cfg.NACL != nil {
		bl = append(bl, NewNACL(ec2.NewFromConfig(awstest.ClientConfig(e.ec2.URL)), e.cfg.NACL))
	}
	if e.cfg.WAFv2 != nil {
		bl = append(bl, NewWAFv2(wafv2.NewFromConfig(awstest.ClientConfig(e.waf.URL)), e.cfg.WAFv2))
	}
	e.p, err = New(e.cfg, st, g, bl, append([]Notifier{e.rec}, e.extra...), Options{
		Clock: e.clock,
		Sleep: func(_ context.Context, d time.Duration) error { e.sleeps = append(e.sleeps, d); return nil },
		Rand:  func() float64 { return 0.5 },
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// restart closes the store and starts a new process on the same database.
func (e *env) restart() {
	e.t.Helper()
	e.st.Close()
	e.start()
}

func (e *env) handle(evs ...Event) Report {
	e.t.Helper()
	rep, err := e.p.Handle(context.Background(), evs)
	if err != nil {
		e.t.Fatalf("Handle: %v", err)
	}
	return rep
}

func (e *env) startRun() Report {
	e.t.Helper()
	rep, err := e.p.Start(context.Background())
	if err != nil {
		e.t.Fatalf("Start: %v", err)
	}
	return rep
}

// audit returns the audit entries of an action.
func (e *env) audit(action string) []store.AuditEntry {
	e.t.Helper()
	as, err := e.st.ListAudit(context.Background(), store.AuditFilter{Action: action})
	if err != nil {
		e.t.Fatal(err)
	}
	return as
}

// blocks returns the store's block rows.
func (e *env) blocks(fl store.BlockFilter) []store.BlockRecord {
	e.t.Helper()
	rs, err := e.st.ListBlocks(context.Background(), fl)
	if err != nil {
		e.t.Fatal(err)
	}
	return rs
}

// denies returns the inbound deny entries of the test ACL.
func (e *env) denies() []awstest.ACLEntry {
	var out []awstest.ACLEntry
	for _, x := range e.ec2.Entries(e.acl) {
		if !x.Egress && x.Action == "deny" && x.RuleNumber < 32767 {
			out = append(out, x)
		}
	}
	return out
}

// attack returns a high-severity inbound finding of actor against the
// test interface, last seen at last.
func attack(actor string, sev float64, last time.Time) *finding.Finding {
	a := netip.MustParseAddr(actor)
	return &finding.Finding{
		ID:        finding.ID("UnauthorizedAccess:EC2/SSHBruteForce", a, "10.0.1.10"),
		Type:      "UnauthorizedAccess:EC2/SSHBruteForce",
		Severity:  sev,
		Title:     actor + " tried SSH passwords on 10.0.1.10",
		Actor:     finding.Actor{IP: a, Direction: finding.Inbound},
		Target:    finding.Target{IP: netip.MustParseAddr("10.0.1.10"), InterfaceID: testENI, Ports: []uint16{22}},
		Count:     100,
		FirstSeen: last.Add(-5 * time.Minute),
		LastSeen:  last,
	}
}

func ev(f *finding.Finding) Event { return Event{Finding: f} }

// detail decodes an audit entry's detail.
func detail(t *testing.T, a store.AuditEntry) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.Detail, &m); err != nil {
		t.Fatalf("audit detail %s: %v", a.Detail, err)
	}
	return m
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
