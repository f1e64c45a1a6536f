package source

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	gdsdk "github.com/aws/aws-sdk-go-v2/service/guardduty"

	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/guardduty"
)

const det = "12abc34d567e8fa901bc2d34e56789f0"

// TestGuardDutySource: the source yields each finding once per update,
// as "GuardDuty Finding" events, with the newest updatedAt as its token,
// and resumes from a saved token.
func TestGuardDutySource(t *testing.T) {
	srv := awstest.NewGuardDuty(t)
	var ev struct{ Detail json.RawMessage }
	raw, err := os.ReadFile(filepath.Join("..", "guardduty", "testdata", "portprobe.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(raw, &ev)
	srv.PutFinding(ev.Detail)
	client := gdsdk.NewFromConfig(awstest.ClientConfig(srv.URL))
	run := func(from []Position, max time.Duration, until func([]Chunk) bool) []Chunk {
		return runGuardDuty(t, client, from, max, until)
	}
	got := run(nil, 5*time.Second, func(cs []Chunk) bool { return len(cs) >= 1 })
	if len(got) != 1 {
		t.Fatalf("%d chunks over several polls, want 1", len(got))
	}
	c := got[0]
	f, err := guardduty.ParseEvent([]byte(strings.TrimSpace(string(c.Data))))
	if err != nil || f.ID != "16afba5c5c43e07c9e3e5e2e544e95df" {
		t.Fatalf("chunk %q: %v", c.Data, err)
	}
	if want := guardduty.FormatCheckpoint(guardduty.Checkpoint{Millis: time.Date(2026, 11, 22, 10, 14, 0, 0, time.UTC).UnixMilli(), IDs: []string{f.ID}}); c.Position.Token != want || c.Position.Object != "guardduty:"+det {
		t.Errorf("position %+v, want token %s", c.Position, want)
	}
	// Resumed from the token: nothing new.
	if got := run([]Position{c.Position}, 100*time.Millisecond, func([]Chunk) bool { return false }); len(got) != 0 {
		t.Errorf("resumed: %d chunks", len(got))
	}
	// Archived in GuardDuty: updated, so yielded again, archived.
	if _, err := client.ArchiveFindings(context.Background(), &gdsdk.ArchiveFindingsInput{DetectorId: aws.String(det), FindingIds: []string{f.ID}}); err != nil {
		t.Fatal(err)
	}
	got = run([]Position{c.Position}, 5*time.Second, func(cs []Chunk) bool { return len(cs) >= 1 })
	if len(got) != 1 {
		t.Fatalf("after the update: %d chunks", len(got))
	}
	if f, _ := guardduty.ParseEvent([]byte(strings.TrimSpace(string(got[0].Data)))); !f.Archived {
		t.Error("the update is not archived")
	}
	if _, err := NewGuardDuty(liveConfig(t, "name: gd\ntype: guardduty\n"), LiveDeps{}); err == nil || !strings.Contains(err.Error(), "detector_id") {
		t.Errorf("no detector_id: %v", err)
	}
}

// runGuardDuty runs a guardduty source of detector det against client
// from the positions from, until until says its chunks are enough (or max
// has passed), lets it poll a few more times, and returns its chunks.
func runGuardDuty(t *testing.T, client *gdsdk.Client, from []Position, max time.Duration, until func([]Chunk) bool) []Chunk {
	t.Helper()
	l, err := NewGuardDuty(liveConfig(t, "name: gd\ntype: guardduty\ndetector_id: "+det+"\npoll_interval: 5ms\nstart: 87600h\n"), LiveDeps{})
	if err != nil {
		t.Fatal(err)
	}
	g := l.(*guardDutySource)
	g.api = client
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var got []Chunk
	done := make(chan error, 1)
	go func() {
		done <- g.Run(ctx, from, func(_ context.Context, c Chunk) error {
			mu.Lock()
			got = append(got, c)
			mu.Unlock()
			return nil
		})
	}()
	deadline := time.Now().Add(max)
	for {
		mu.Lock()
		ok := until(got)
		mu.Unlock()
		if ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(30 * time.Millisecond) // several more polls
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}

// TestGuardDutyCheckpointSameMillisecond: a finding updated in the same
// millisecond as one already yielded and committed, but listed only after
// a restart, is yielded once (resuming at the next millisecond lost it);
// the one yielded before is not yielded again, and a restart from the
// second chunk's token yields nothing.
func TestGuardDutyCheckpointSameMillisecond(t *testing.T) {
	srv := awstest.NewGuardDuty(t)
	var ev struct{ Detail map[string]any }
	raw, err := os.ReadFile(filepath.Join("..", "guardduty", "testdata", "portprobe.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	put := func(id string) {
		ev.Detail["id"] = id
		ev.Detail["updatedAt"] = "2026-11-22T10:14:00.123Z"
		b, _ := json.Marshal(ev.Detail)
		if err := srv.PutFinding(b); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(cs []Chunk) []string {
		var out []string
		for _, c := range cs {
			for line := range strings.SplitSeq(strings.TrimSpace(string(c.Data)), "\n") {
				f, err := guardduty.ParseEvent([]byte(line))
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, f.ID)
			}
		}
		return out
	}
	client := gdsdk.NewFromConfig(awstest.ClientConfig(srv.URL))
	const a, b = "0000000000000000000000000000000a", "0000000000000000000000000000000b"
	put(a)
	first := runGuardDuty(t, client, nil, 5*time.Second, func(cs []Chunk) bool { return len(cs) >= 1 })
	if got := ids(first); len(got) != 1 || got[0] != a {
		t.Fatalf("first run yielded %v, want [%s]", got, a)
	}
	// Updated in the same millisecond, after the checkpoint was saved.
	put(b)
	second := runGuardDuty(t, client, []Position{first[0].Position}, 5*time.Second, func(cs []Chunk) bool { return len(cs) >= 1 })
	if got := ids(second); len(got) != 1 || got[0] != b {
		t.Fatalf("after a restart from %q: yielded %v, want [%s] once", first[0].Position.Token, got, b)
	}
	if third := runGuardDuty(t, client, []Position{second[0].Position}, 100*time.Millisecond, func([]Chunk) bool { return false }); len(third) != 0 {
		t.Errorf("after a restart from %q: yielded %v again", second[0].Position.Token, ids(third))
	}
	// A token saved by an older flowguard (milliseconds alone) resumes
	// after its millisecond, as it did.
	if c, err := guardduty.ParseCheckpoint("1795342440123"); err != nil || c.Millis != 1795342440124 || len(c.IDs) != 0 {
		t.Errorf("old token: %+v %v", c, err)
	}
	if _, err := guardduty.ParseCheckpoint("x/1"); err == nil {
		t.Error("a bad token accepted")
	}
}
