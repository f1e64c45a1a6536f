package respond

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
)

// AWSRanges are AWS's published address ranges (ip-ranges.json), which
// flowguard never blocks: blocking them cuts off AWS services (CloudFront,
// Route 53 health checks, S3, the regional endpoints) from the user's own
// resources.
type AWSRanges struct {
	SyncToken  string
	CreateDate string
	prefixes   []awsPrefix // sorted by address
}

type awsPrefix struct {
	p       netip.Prefix
	service string
	region  string
}

// ipRangesFile is the shape of ip-ranges.json.
type ipRangesFile struct {
	SyncToken  string `json:"syncToken"`
	CreateDate string `json:"createDate"`
	Prefixes   []struct {
		IPPrefix string `json:"ip_prefix"`
		Region   string `json:"region"`
		Service  string `json:"service"`
	} `json:"prefixes"`
	IPv6Prefixes []struct {
		IPv6Prefix string `json:"ipv6_prefix"`
		Region     string `json:"region"`
		Service    string `json:"service"`
	} `json:"ipv6_prefixes"`
}

// LoadAWSRanges reads a local copy of ip-ranges.json.
func LoadAWSRanges(path string) (*AWSRanges, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read AWS's IP ranges: %w", err)
	}
	r, err := ParseAWSRanges(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// ParseAWSRanges reads ip-ranges.json. A file without both IPv4 and IPv6
// prefixes is an error: AWS publishes both, so a file lacking one is
// truncated or not AWS's, and would leave that family unprotected.
func ParseAWSRanges(b []byte) (*AWSRanges, error) {
	var f ipRangesFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("not AWS's ip-ranges.json: %w", err)
	}
	r := &AWSRanges{SyncToken: f.SyncToken, CreateDate: f.CreateDate}
	for i, p := range f.Prefixes {
		pp, err := netip.ParsePrefix(p.IPPrefix)
		if err != nil || !pp.Addr().Is4() {
			return nil, fmt.Errorf("prefixes[%d]: %q is not an IPv4 CIDR block", i, p.IPPrefix)
		}
		r.prefixes = append(r.prefixes, awsPrefix{pp.Masked(), p.Service, p.Region})
	}
	for i, p := range f.IPv6Prefixes {
		pp, err := netip.ParsePrefix(p.IPv6Prefix)
		if err != nil || !pp.Addr().Is6() {
			return nil, fmt.Errorf("ipv6_prefixes[%d]: %q is not an IPv6 CIDR block", i, p.IPv6Prefix)
		}
		r.prefixes = append(r.prefixes, awsPrefix{pp.Masked(), p.Service, p.Region})
	}
	switch {
	case len(f.Prefixes) == 0:
		return nil, errors.New(`no IPv4 prefixes ("prefixes"): not AWS's complete ip-ranges.json, and AWS's IPv4 addresses would not be protected`)
	case len(f.IPv6Prefixes) == 0:
		return nil, errors.New(`no IPv6 prefixes ("ipv6_prefixes"): not AWS's complete ip-ranges.json, and AWS's IPv6 addresses would not be protected`)
	}
	slices.SortFunc(r.prefixes, func(a, b awsPrefix) int { return a.p.Addr().Compare(b.p.Addr()) })
	return r, nil
}

// Counts returns the number of IPv4 and IPv6 prefixes.
func (r *AWSRanges) Counts() (v4, v6 int) {
	for _, a := range r.prefixes {
		if a.p.Addr().Is4() {
			v4++
		} else {
			v6++
		}
	}
	return v4, v6
}

// Len returns the number of prefixes.
func (r *AWSRanges) Len() int { return len(r.prefixes) }

// Overlapping returns the first AWS prefix that overlaps p and its
// service, if any.
func (r *AWSRanges) Overlapping(p netip.Prefix) (netip.Prefix, string, bool) {
	if r == nil {
		return netip.Prefix{}, "", false
	}
	for _, a := range r.prefixes {
		if a.p.Overlaps(p) {
			return a.p, a.service, true
		}
	}
	return netip.Prefix{}, "", false
}
