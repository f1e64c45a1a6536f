package respond

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/wafv2"
	"github.com/aws/aws-sdk-go-v2/service/wafv2/types"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
)

// WAFv2API is the part of the WAFv2 client the IP set blocker uses
// (wafv2:GetIPSet, UpdateIPSet).
type WAFv2API interface {
	GetIPSet(context.Context, *wafv2.GetIPSetInput, ...func(*wafv2.Options)) (*wafv2.GetIPSetOutput, error)
	UpdateIPSet(context.Context, *wafv2.UpdateIPSetInput, ...func(*wafv2.Options)) (*wafv2.UpdateIPSetOutput, error)
}

// WAFv2 blocks addresses by adding them to WAFv2 IP sets (one for IPv4,
// one for IPv6) that the user's web ACL denies. UpdateIPSet replaces the
// whole list and needs the lock token from GetIPSet; on
// WAFOptimisticLockException (someone wrote in between) it reads again
// and retries. It only ever removes addresses the store says it added.
type WAFv2 struct {
	api          WAFv2API
	scope        types.Scope
	v4, v6       *IPSetRef
	maxAddresses int
	// lockRetries bounds the read-modify-write loop on lock conflicts.
	lockRetries int
}

// NewWAFv2 returns a WAFv2 IP set blocker.
func NewWAFv2(api WAFv2API, cfg *WAFv2Config) *WAFv2 {
	w := &WAFv2{api: api, scope: types.Scope(cfg.Scope), v4: cfg.IPv4Set, v6: cfg.IPv6Set, maxAddresses: MaxIPSetAddresses, lockRetries: 4}
	if cfg.MaxAddresses > 0 {
		w.maxAddresses = cfg.MaxAddresses
	}
	return w
}

// Name returns "wafv2".
func (w *WAFv2) Name() string { return WAFv2Name }

const wafPrefix = "wafv2:"

func (w *WAFv2) target(s *IPSetRef) string {
	return wafPrefix + string(w.scope) + "/" + s.Name + "/" + s.ID
}

// set returns the IP set a target names.
func (w *WAFv2) set(target string) (*IPSetRef, error) {
	for _, s := range []*IPSetRef{w.v4, w.v6} {
		if s != nil && w.target(s) == target {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%q is not one of the configured IP sets", target)
}

// Targets returns the IP set of the address's family, if configured.
func (w *WAFv2) Targets(_ context.Context, _ *finding.Finding, p netip.Prefix) ([]string, error) {
	s := w.v6
	if p.Addr().Is4() {
		s = w.v4
	}
	if s == nil {
		return nil, nil
	}
	return []string{w.target(s)}, nil
}

func (w *WAFv2) get(ctx context.Context, s *IPSetRef) ([]string, string, error) {
	out, err := w.api.GetIPSet(ctx, &wafv2.GetIPSetInput{Name: aws.String(s.Name), Id: aws.String(s.ID), Scope: w.scope})
	if err != nil {
		return nil, "", fmt.Errorf("cannot read IP set %s: %w", s.Name, err)
	}
	if out.IPSet == nil {
		return nil, "", fmt.Errorf("cannot read IP set %s: empty answer", s.Name)
	}
	return out.IPSet.Addresses, aws.ToString(out.LockToken), nil
}

// indexOf returns the index of p in a set's addresses (compared as
// prefixes), or -1.
func indexOf(addrs []string, p netip.Prefix) int {
	return slices.IndexFunc(addrs, func(a string) bool {
		q, err := netip.ParsePrefix(a)
		return err == nil && q.Masked() == p.Masked()
	})
}

// Observe reads the set: the room left, and ErrPresent when the
// address is already there (put there by someone else: the pipeline asks
// only for targets where the store holds no live block of it).
func (w *WAFv2) Observe(ctx context.Context, target string, p netip.Prefix) (store.Slot, error) {
	s, err := w.set(target)
	if err != nil {
		return store.Slot{}, err
	}
	addrs, _, err := w.get(ctx, s)
	if err != nil {
		return store.Slot{}, err
	}
	if indexOf(addrs, p) >= 0 {
		return store.Slot{}, ErrPresent
	}
	return store.Slot{Target: target, Room: w.maxAddresses - len(addrs), Limit: w.maxAddresses}, nil
}

// update runs a read-modify-write of a set's address list, retrying on
// lock conflicts. change returns the new list, or nil when nothing is to
// be written.
func (w *WAFv2) update(ctx context.Context, target string, change func([]string) []string) (bool, error) {
	s, err := w.set(target)
	if err != nil {
		return false, err
	}
	var lastErr error
	for range w.lockRetries {
		addrs, token, err := w.get(ctx, s)
		if err != nil {
			return IsRetryable(err), err
		}
		next := change(addrs)
		if next == nil {
			return false, nil
		}
		_, err = w.api.UpdateIPSet(ctx, &wafv2.UpdateIPSetInput{
			Name: aws.String(s.Name), Id: aws.String(s.ID), Scope: w.scope, Addresses: next, LockToken: aws.String(token),
		})
		switch errorCode(err) {
		case "":
			if err != nil {
				return IsRetryable(err), fmt.Errorf("cannot update IP set %s: %w", s.Name, err)
			}
			return false, nil
		case "WAFOptimisticLockException":
			lastErr = fmt.Errorf("cannot update IP set %s: %w", s.Name, err)
			continue
		case "WAFLimitsExceededException":
			return false, &FullError{Target: target, Limit: w.maxAddresses, Why: "AWS says the IP set limit is reached"}
		}
		return IsRetryable(err), fmt.Errorf("cannot update IP set %s: %w", s.Name, err)
	}
	return true, lastErr
}

// Block adds the address to its set; an address already there succeeds
// (Prepare has made sure it is not someone else's).
func (w *WAFv2) Block(ctx context.Context, b *Block) (bool, error) {
	p := b.Prefix.Masked()
	return w.update(ctx, b.Target, func(addrs []string) []string {
		if indexOf(addrs, p) >= 0 {
			return nil
		}
		return append(slices.Clone(addrs), p.String())
	})
}

// Unblock removes the address from its set, leaving every other address
// as it is.
func (w *WAFv2) Unblock(ctx context.Context, b Block) (bool, error) {
	p := b.Prefix.Masked()
	return w.update(ctx, b.Target, func(addrs []string) []string {
		i := indexOf(addrs, p)
		if i < 0 {
			return nil
		}
		next := slices.Delete(slices.Clone(addrs), i, i+1)
		if next == nil {
			next = []string{}
		}
		return next
	})
}

// ListTarget returns every address of the set.
func (w *WAFv2) ListTarget(ctx context.Context, target string) ([]Block, error) {
	s, err := w.set(target)
	if err != nil {
		return nil, err
	}
	addrs, _, err := w.get(ctx, s)
	if err != nil {
		return nil, err
	}
	out := make([]Block, 0, len(addrs))
	for _, a := range addrs {
		p, err := netip.ParsePrefix(strings.TrimSpace(a))
		if err != nil {
			continue
		}
		out = append(out, Block{Prefix: p.Masked(), Target: target})
	}
	return out, nil
}

// List returns the addresses of both sets.
func (w *WAFv2) List(ctx context.Context) ([]Block, error) {
	var out []Block
	for _, s := range []*IPSetRef{w.v4, w.v6} {
		if s == nil {
			continue
		}
		bs, err := w.ListTarget(ctx, w.target(s))
		if err != nil {
			return nil, err
		}
		out = append(out, bs...)
	}
	return out, nil
}
