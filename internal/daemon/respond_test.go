package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/respond"
	"github.com/flowguard/flowguard/internal/store"
)

// TestBlocksAndExpiryOnATimer: a port scan seen by the daemon is blocked
// with a network ACL entry (through the real SDK against the EC2 test
// server), and the block is removed by the daemon's expiry timer once its
// ban time has passed, with no new record arriving.
func TestBlocksAndExpiryOnATimer(t *testing.T) {
	srv := awstest.NewEC2(t)
	acl := srv.AddNetworkACL("vpc-0123456789abcdef0", "subnet-0aaaaaaaaaaaaaaa1")
	srv.AddNetworkInterface(awstest.NetworkInterface{ID: "eni-0a1b2c3d4e5f60001", Subnet: "subnet-0aaaaaaaaaaaaaaa1",
		VPC: "vpc-0123456789abcdef0", PrivateIP: "10.0.1.10"})
	clock := respond.NewFakeClock(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))

	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	cfgPath := filepath.Join(dir, "flowguard.yaml")
	ranges, err := filepath.Abs(filepath.Join("..", "respond", "testdata", "ip-ranges.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cfgPath, fmt.Appendf(nil, `home_networks: [10.0.0.0/16]
detectors:
  allowed_lateness: 0s
response:
  mode: enforce
  aws_ip_ranges: %s
  ban_time: 1h
  min_severity: 4
  max_blocks_per_hour: 10
  nacl: {}
  routes:
    - name: scans
      types: ["Recon:*"]
      block: [nacl]
sources:
  - name: local
    type: files
    paths: [logs/]
    poll_interval: 10ms
`, ranges), 0o644)
	build := func(ctx context.Context, cfg *config.Config, st *store.Store, _ *slog.Logger) (*respond.Pipeline, error) {
		aws, err := respond.LoadAWSRanges(cfg.Response.AWSIPRanges)
		if err != nil {
			return nil, err
		}
		g, err := respond.NewGuards(cfg.Response, config.Prefixes(cfg.HomeNetworks), nil, aws)
		if err != nil {
			return nil, err
		}
		nacl := respond.NewNACL(ec2.NewFromConfig(awstest.ClientConfig(srv.URL)), cfg.Response.NACL)
		return respond.New(cfg.Response, st, g, []respond.Planner{nacl}, nil, respond.Options{Clock: clock})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := New(ctx, Options{ConfigPath: cfgPath, DBPath: filepath.Join(dir, "f.db"), BuildPipeline: build, ExpireEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	// 40 ports of 10.0.1.10 probed and rejected within a minute, then a
	// record an hour later that closes the window.
	var b strings.Builder
	start := clock.Now().Unix() - 600
	for port := 1; port <= 40; port++ {
		fmt.Fprintf(&b, "2 123456789012 eni-0a1b2c3d4e5f60001 198.51.100.23 10.0.1.10 40000 %d 6 1 40 %d %d REJECT OK\n", port, start+int64(port), start+int64(port)+5)
	}
	fmt.Fprintf(&b, "2 123456789012 eni-0a1b2c3d4e5f60001 10.0.1.10 10.0.2.20 40000 443 6 1 40 %d %d ACCEPT OK\n", start+3600, start+3605)
	os.WriteFile(filepath.Join(logs, "flows.log"), []byte(b.String()), 0o644)

	wait := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	blocked := func() bool {
		for _, e := range srv.Entries(acl) {
			if e.CIDR == "198.51.100.23/32" && !e.Egress {
				return true
			}
		}
		return false
	}
	wait("the scanner blocked in the network ACL", blocked)
	rows, err := d.Store().ListBlocks(ctx, store.BlockFilter{LiveOnly: true})
	if err != nil || len(rows) != 1 {
		t.Fatalf("live blocks: %d, %v; want 1", len(rows), err)
	}

	clock.Advance(2 * time.Hour)
	wait("the block removed by the expiry timer", func() bool { return !blocked() })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
