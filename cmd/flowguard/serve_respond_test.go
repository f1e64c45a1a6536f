package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/store"
)

// respondConfig blocks the attacks' actors in a WAFv2 IP set.
const respondConfig = `detectors:
  allowed_lateness: 2m
response:
  mode: enforce
  aws_ip_ranges: %s
  min_severity: 4
  max_blocks_per_hour: 1000
  ban_time: 168h
  wafv2:
    scope: REGIONAL
    ipv4_set: {name: flowguard-v4, id: %s}
  routes:
    - name: attacks
      types: ["Recon:*", "UnauthorizedAccess:*", "Impact:*"]
      block: [wafv2]
` + daemonSources

// responseRun prepares a daemon run whose blocks go to its own WAFv2
// test server, reached through the SDK's AWS_ENDPOINT_URL.
func responseRun(t *testing.T) (*daemonRun, *awstest.WAFv2, string) {
	t.Helper()
	waf := awstest.NewWAFv2(t)
	id := waf.CreateIPSet("REGIONAL", "flowguard-v4", "IPV4")
	ranges, err := filepath.Abs(filepath.Join("..", "..", "internal", "respond", "testdata", "ip-ranges.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := newDaemonRunWith(t, fmt.Sprintf(respondConfig, ranges, id), awstest.Env("AWS_ENDPOINT_URL="+waf.URL, "AWS_REGION="+awstest.Region))
	return r, waf, id
}

// blockState is what a user checks of the blocks: the addresses in the
// IP set, and each prefix's block rows and block audit entries.
func blockState(t *testing.T, r *daemonRun, waf *awstest.WAFv2, id string) []string {
	t.Helper()
	out := []string{}
	for _, a := range waf.Addresses("REGIONAL", id) {
		out = append(out, "ipset "+a)
	}
	st, err := store.Open(context.Background(), r.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.ListBlocks(context.Background(), store.BlockFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range rows {
		out = append(out, fmt.Sprintf("row %s %s %s", b.Prefix, b.Target, b.State))
	}
	audit, err := st.ListAudit(context.Background(), store.AuditFilter{Action: "block"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range audit {
		out = append(out, "audit block "+e.Subject)
	}
	slices.Sort(out)
	return out
}

// TestServeBlocksOnceAcrossKill9: with blocking on, kill -9 at random
// moments and restarts leave the same blocks (IP set addresses, block
// rows, audit entries) as a run never killed: none lost, none twice.
func TestServeBlocksOnceAcrossKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	pieces := generated(t, 60000, 24, 7)
	clean, cleanWAF, cleanID := responseRun(t)
	clean.runAll(pieces, 0)
	want := blockState(t, clean, cleanWAF, cleanID)
	if len(cleanWAF.Addresses("REGIONAL", cleanID)) == 0 {
		t.Fatalf("the uninterrupted run blocked nothing:\\n%s", clean.errb)
	}

	killed, waf, id := responseRun(t)
	kills := killAndRestart(killed, pieces, piecesSize(pieces))
	got := blockState(t, killed, waf, id)
	t.Logf("%d kills; block facts: %q", kills, got)
	diffLines(t, "blocks", got, want)
}
