package finding

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ArchivedFilter selects findings by their archived state.
type ArchivedFilter int

// Archived filters. The zero value lists current (not archived) findings,
// as GuardDuty's console does.
const (
	CurrentOnly  ArchivedFilter = iota // not archived
	ArchivedOnly                       // archived
	AnyArchived                        // both
)

// ParseArchivedFilter reads "no" (or "false", "current"), "yes" (or "true",
// "archived") or "all".
func ParseArchivedFilter(s string) (ArchivedFilter, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "no", "false", "current", "":
		return CurrentOnly, nil
	case "yes", "true", "archived":
		return ArchivedOnly, nil
	case "all", "any":
		return AnyArchived, nil
	}
	return 0, fmt.Errorf("archived %q: want yes, no or all", s)
}

// Filter selects findings, for `flowguard findings list` and the API. The
// zero Filter selects every current finding.
type Filter struct {
	// Types are exact finding types or prefixes ending in '*'; any may
	// match.
	Types []string
	// MinSeverity selects findings at or above it.
	MinSeverity float64
	// Actors are IP addresses or CIDR blocks; any may match.
	Actors   []netip.Prefix
	Archived ArchivedFilter
	// Since selects findings last seen at or after it.
	Since time.Time
	// Limit caps the number of findings (0: no cap).
	Limit int
}

// Match reports whether a finding passes the filter (Limit aside). Invalid
// type patterns match nothing; Validate reports them.
func (fl *Filter) Match(f *Finding) bool {
	switch fl.Archived {
	case CurrentOnly:
		if f.Archived {
			return false
		}
	case ArchivedOnly:
		if !f.Archived {
			return false
		}
	}
	if f.Severity < fl.MinSeverity {
		return false
	}
	if !fl.Since.IsZero() && f.LastSeen.Before(fl.Since) {
		return false
	}
	if len(fl.Actors) > 0 && !containsAddr(fl.Actors, f.Actor.IP) {
		return false
	}
	if len(fl.Types) > 0 {
		ok := false
		for _, t := range fl.Types {
			p, err := compileType(t)
			if err == nil && p.match(f.Type) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// Validate checks the type patterns and the severity.
func (fl *Filter) Validate() error {
	for _, t := range fl.Types {
		if _, err := compileType(t); err != nil {
			return err
		}
	}
	if fl.MinSeverity < 0 || fl.MinSeverity > 10 {
		return fmt.Errorf("minimum severity %g: want 0 to 10", fl.MinSeverity)
	}
	if fl.Limit < 0 {
		return fmt.Errorf("limit %d: want 0 or more", fl.Limit)
	}
	return nil
}

// ParseSeverity reads a severity as a number from 0 to 10 or as GuardDuty's
// level names low (1), medium (4) and high (7), the lower bounds of the
// levels.
func ParseSeverity(s string) (float64, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "low":
		return 1, nil
	case "medium", "med":
		return 4, nil
	case "high":
		return 7, nil
	case "critical":
		return 9, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v < 0 || v > 10 {
		return 0, fmt.Errorf("severity %q: want a number from 0 to 10, or low, medium or high", s)
	}
	return v, nil
}
