package respond

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/store"
)

// webhook is a real HTTP receiver standing in for a chat webhook: it
// counts, per finding id, the messages that mention it.
type webhook struct {
	srv *httptest.Server
	mu  sync.Mutex
	n   int
	per map[string]int
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{per: map[string]int{}}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var ids []string
		if err := json.NewDecoder(r.Body).Decode(&ids); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.n++
		for _, id := range ids {
			w.per[id]++
		}
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// hookNotifier posts the finding ids of a message to a webhook.
type hookNotifier struct{ url string }

func (h hookNotifier) Name() string { return "rec" }

func (h hookNotifier) Notify(ctx context.Context, m Message) (bool, error) {
	var ids []string
	for _, e := range m.Events {
		if e.Finding != nil {
			ids = append(ids, e.Finding.ID)
		}
	}
	b, _ := json.Marshal(ids)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(b))
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return true, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode >= 500, fmt.Errorf("webhook answered %s", resp.Status)
	}
	return false, nil
}

// concurrentConfig blocks every finding in the network ACL and notifies
// the webhook.
func concurrentConfig(maxPerHour int) *Config {
	c := baseConfig()
	c.MaxBlocksPerHour = maxPerHour
	if err := c.Validate([]string{"rec"}); err != nil {
		panic(err)
	}
	return c
}

// newProcess builds a pipeline on its own connection to the database at
// path: what one flowguard process is.
func newProcess(t testing.TB, cfg *Config, path, ec2URL, hookURL string, clock Clock) (*Pipeline, *store.Store) {
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	aws, err := LoadAWSRanges(cfg.AWSIPRanges)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGuards(cfg, testHome, testAllow, aws)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, st, g, []Planner{NewNACL(ec2.NewFromConfig(awstest.ClientConfig(ec2URL)), cfg.NACL)}, []Notifier{hookNotifier{hookURL}}, Options{
		Clock: clock,
		Sleep: func(ctx context.Context, d time.Duration) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, st
}

// attackers returns n findings from distinct addresses.
func attackers(n int) []Event {
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = ev(attack(fmt.Sprintf("198.51.100.%d", 10+i), 8, t0))
	}
	return evs
}

// shuffled returns the events in a random order.
func shuffled(evs []Event) []Event {
	out := append([]Event(nil), evs...)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// runProcess is one process's run: resume earlier work, then answer the
// events.
func runProcess(p *Pipeline, evs []Event) error {
	if _, err := p.Start(context.Background()); err != nil {
		return err
	}
	_, err := p.Handle(context.Background(), evs)
	return err
}

// denyCount counts the deny entries per CIDR in flowguard's range.
func denyCount(s *awstest.EC2, acl string) map[string]int {
	out := map[string]int{}
	for _, x := range s.Entries(acl) {
		if !x.Egress && x.Action == "deny" && x.RuleNumber >= DefaultRuleMin && x.RuleNumber <= DefaultRuleMax {
			out[x.CIDR+x.IPv6CIDR]++
		}
	}
	return out
}

// checkShared checks what several processes on one database left: one
// deny entry per banned address (the store's live row naming it), one
// ban per address, bans within the cap, one delivered message per
// outbox row, and each finding told once.
func checkShared(t *testing.T, trial int, path string, s *awstest.EC2, acl string, hook *webhook, evs []Event, maxPerHour int) {
	t.Helper()
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: filepath.ToSlash(path)}).String()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bans := map[string]int{}
	rows, err := db.Query(`SELECT prefix FROM bans`)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for rows.Next() {
		var p string
		rows.Scan(&p)
		bans[p]++
		total++
	}
	rows.Close()
	want := min(len(evs), maxPerHour)
	if total != want {
		t.Errorf("trial %d: %d bans, want %d (cap %d)", trial, total, want, maxPerHour)
	}
	denies := denyCount(s, acl)
	live := map[string]int32{}
	rows, err = db.Query(`SELECT prefix, rule_number FROM blocks WHERE state IN ('pending','active','removing')`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p string
		var r int32
		rows.Scan(&p, &r)
		live[p] = r
	}
	rows.Close()
	for p, n := range bans {
		if n != 1 {
			t.Errorf("trial %d: %s banned %d times", trial, p, n)
		}
		if denies[p] != 1 {
			t.Errorf("trial %d: %s has %d deny entries, want 1", trial, p, denies[p])
		}
		if _, ok := live[p]; !ok {
			t.Errorf("trial %d: %s has no live block row", trial, p)
		}
	}
	for p, n := range denies {
		if bans[p] == 0 {
			t.Errorf("trial %d: %d deny entries for %s, which was never banned", trial, n, p)
		}
	}
	for _, x := range s.Entries(acl) {
		if r, ok := live[x.CIDR]; ok && x.Action == "deny" && r != x.RuleNumber {
			t.Errorf("trial %d: the entry of %s is rule %d, the store says %d: it would not be recognised", trial, x.CIDR, x.RuleNumber, r)
		}
	}
	var sent, queued int
	if err := db.QueryRow(`SELECT COUNT(*) FROM outbox WHERE state = 'sent'`).Scan(&sent); err != nil {
		t.Fatal(err)
	}
	db.QueryRow(`SELECT COUNT(*) FROM outbox WHERE state != 'sent'`).Scan(&queued)
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if hook.n != sent || queued != 0 {
		t.Errorf("trial %d: the webhook got %d messages for %d sent outbox rows (%d not sent)", trial, hook.n, sent, queued)
	}
	for _, e := range evs {
		if n := hook.per[e.Finding.ID]; n != 1 {
			t.Errorf("trial %d: finding %s told %d times, want once", trial, e.Finding.Actor.IP, n)
		}
	}
}

// TestConcurrentPipelinesOneDatabase runs several pipelines, each on its
// own connection to one database (as several processes would), on the
// same findings at once, many times.
func TestConcurrentPipelinesOneDatabase(t *testing.T) {
	const procs, trials = 4, 8
	for _, tc := range []struct {
		name      string
		attackers int
		cap       int
	}{
		{"blocks", 6, 100},
		{"cap", 8, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for trial := range trials {
				s := awstest.NewEC2(t)
				acl := s.AddNetworkACL(testVPC, testSubnet)
				s.AddNetworkInterface(awstest.NetworkInterface{ID: testENI, Subnet: testSubnet, VPC: testVPC, PrivateIP: "10.0.1.10"})
				s.Delay(time.Millisecond) // widen the windows
				hook := newWebhook(t)
				path := filepath.Join(t.TempDir(), "flowguard.db")
				cfg := concurrentConfig(tc.cap)
				clock := NewFakeClock(t0)
				evs := attackers(tc.attackers)
				// Create the schema first, as a first run would.
				_, st0 := newProcess(t, cfg, path, s.URL, hook.srv.URL, clock)
				st0.Close()
				var ps []*Pipeline
				for range procs {
					p, st := newProcess(t, cfg, path, s.URL, hook.srv.URL, clock)
					t.Cleanup(func() { st.Close() })
					ps = append(ps, p)
				}
				var wg sync.WaitGroup
				errs := make(chan error, procs)
				for _, p := range ps {
					wg.Add(1)
					go func() {
						defer wg.Done()
						errs <- runProcess(p, shuffled(evs))
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Errorf("trial %d: %v", trial, err)
					}
				}
				checkShared(t, trial, path, s, acl, hook, evs, tc.cap)
				// Expiry and unblock remove every entry.
				clock.Advance(DefaultBanTime * 1000)
				for _, p := range ps {
					wg.Add(1)
					go func() {
						defer wg.Done()
						p.Handle(context.Background(), nil)
					}()
				}
				wg.Wait()
				if d := denyCount(s, acl); len(d) != 0 {
					t.Errorf("trial %d: entries left after expiry: %v", trial, d)
				}
				if t.Failed() {
					return
				}
			}
		})
	}
}

// TestConcurrentPipelinesSeparateDatabases runs several pipelines with
// databases of their own on one network ACL: no ledger is shared, so the
// blocker itself must re-read the ACL before writing, take an entry of
// its shape for the same address in its range as its own, and remove
// every such entry on expiry.
func TestConcurrentPipelinesSeparateDatabases(t *testing.T) {
	const procs, trials = 4, 8
	for trial := range trials {
		s := awstest.NewEC2(t)
		acl := s.AddNetworkACL(testVPC, testSubnet)
		s.AddNetworkInterface(awstest.NetworkInterface{ID: testENI, Subnet: testSubnet, VPC: testVPC, PrivateIP: "10.0.1.10"})
		s.Delay(time.Millisecond)
		hook := newWebhook(t)
		cfg := concurrentConfig(100)
		clock := NewFakeClock(t0)
		evs := attackers(6)
		var ps []*Pipeline
		dir := t.TempDir()
		for i := range procs {
			p, st := newProcess(t, cfg, filepath.Join(dir, strconv.Itoa(i)+".db"), s.URL, hook.srv.URL, clock)
			t.Cleanup(func() { st.Close() })
			ps = append(ps, p)
		}
		var wg sync.WaitGroup
		for _, p := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := runProcess(p, shuffled(evs)); err != nil {
					t.Errorf("trial %d: %v", trial, err)
				}
			}()
		}
		wg.Wait()
		d := denyCount(s, acl)
		for _, e := range evs {
			if p := ActorPrefix(e.Finding).String(); d[p] != 1 {
				t.Errorf("trial %d: %s has %d deny entries, want 1 (all: %v)", trial, p, d[p], d)
			}
		}
		// Each process expires its own blocks: every entry goes.
		clock.Advance(DefaultBanTime * 1000)
		for _, p := range ps {
			if _, err := p.Handle(context.Background(), nil); err != nil {
				t.Errorf("trial %d: expiry: %v", trial, err)
			}
		}
		if d := denyCount(s, acl); len(d) != 0 {
			t.Errorf("trial %d: entries left after expiry: %v", trial, d)
		}
		if t.Failed() {
			return
		}
	}
}

// The helper process: TestConcurrentProcesses re-executes the test binary
// with these variables set, and each child is one flowguard process.
const (
	envChild   = "FLOWGUARD_TEST_CHILD"
	envEC2     = "FLOWGUARD_TEST_EC2"
	envHook    = "FLOWGUARD_TEST_HOOK"
	envDB      = "FLOWGUARD_TEST_DB"
	envActors  = "FLOWGUARD_TEST_ACTORS"
	envCap     = "FLOWGUARD_TEST_CAP"
	envNowUnix = "FLOWGUARD_TEST_NOW"
)

func TestHelperProcess(t *testing.T) {
	if os.Getenv(envChild) != "1" {
		t.Skip("run by TestConcurrentProcesses")
	}
	n, _ := strconv.Atoi(os.Getenv(envActors))
	maxPerHour, _ := strconv.Atoi(os.Getenv(envCap))
	now, _ := strconv.ParseInt(os.Getenv(envNowUnix), 10, 64)
	cfg := concurrentConfig(maxPerHour)
	p, st := newProcess(t, cfg, os.Getenv(envDB), os.Getenv(envEC2), os.Getenv(envHook), NewFakeClock(time.Unix(now, 0).UTC()))
	defer st.Close()
	if err := runProcess(p, shuffled(attackers(n))); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentProcesses runs several OS processes (this test binary
// again) against one database, the EC2 server and the webhook.
func TestConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	const procs, trials = 4, 3
	for trial := range trials {
		s := awstest.NewEC2(t)
		acl := s.AddNetworkACL(testVPC, testSubnet)
		s.AddNetworkInterface(awstest.NetworkInterface{ID: testENI, Subnet: testSubnet, VPC: testVPC, PrivateIP: "10.0.1.10"})
		s.Delay(time.Millisecond)
		hook := newWebhook(t)
		path := filepath.Join(t.TempDir(), "flowguard.db")
		evs := attackers(8)
		cfg := concurrentConfig(5)
		_, st0 := newProcess(t, cfg, path, s.URL, hook.srv.URL, NewFakeClock(t0))
		st0.Close()
		var cmds []*exec.Cmd
		var outs []*bytes.Buffer
		for range procs {
			cmd := exec.Command(exe, "-test.run=^TestHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), envChild+"=1", envEC2+"="+s.URL, envHook+"="+hook.srv.URL, envDB+"="+path,
				envActors+"=8", envCap+"=5", envNowUnix+"="+strconv.FormatInt(t0.Unix(), 10))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds = append(cmds, cmd)
			outs = append(outs, &out)
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Errorf("trial %d: process %d: %v\n%s", trial, i, err, strings.TrimSpace(outs[i].String()))
			}
		}
		checkShared(t, trial, path, s, acl, hook, evs, 5)
		if t.Failed() {
			return
		}
	}
}
