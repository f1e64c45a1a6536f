package main

import (
	"context"
	"errors"
	"net/netip"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/respond"
	"github.com/flowguard/flowguard/internal/store"
)

// demoACLID is the demo's network ACL: it exists nowhere but in the demo.
const demoACLID = "acl-0demo0000000000001"

// demoACL is the demo's network ACL blocker: an empty ACL with room for
// AWS's default 20 entries, which the dry-run pipeline plans against
// without calling AWS. Placing or removing an entry is refused: the demo
// runs in dry-run mode only.
type demoACL struct{}

var _ respond.Planner = demoACL{}

var errDemoACL = errors.New("the demo's network ACL is simulated: the demo only records what it would block")

func demoBlockers(aws.Config, *respond.Config) []respond.Planner { return []respond.Planner{demoACL{}} }

func (demoACL) Name() string { return respond.NACLName }

func (demoACL) Targets(context.Context, *finding.Finding, netip.Prefix) ([]string, error) {
	return []string{"nacl:" + demoACLID}, nil
}

func (demoACL) Observe(_ context.Context, target string, _ netip.Prefix) (store.Slot, error) {
	return store.Slot{Target: target, RuleMin: 1, RuleMax: 99, Room: respond.DefaultNACLEntries, Limit: respond.DefaultNACLEntries}, nil
}

func (demoACL) ListTarget(context.Context, string) ([]respond.Block, error) { return nil, nil }

func (demoACL) List(context.Context) ([]respond.Block, error) { return nil, nil }

func (demoACL) Block(context.Context, *respond.Block) (bool, error) { return false, errDemoACL }

func (demoACL) Unblock(context.Context, respond.Block) (bool, error) { return false, nil }
