// Package finding is flowguard's finding model: GuardDuty-shaped findings
// with a stable identity, so that repeated activity updates one finding
// instead of raising new ones, and the archive, feedback and suppression
// that GuardDuty users know.
package finding

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"time"
)

// Direction says which way the actor's traffic went, seen from our
// networks.
type Direction string

// Directions.
const (
	Inbound  Direction = "inbound"  // an outside actor reached in
	Outbound Direction = "outbound" // one of our instances reached out
	Lateral  Direction = "lateral"  // one of ours reached another of ours
)

// Actor is who did it. IP is absent when no single address did it (a
// distributed flood).
type Actor struct {
	IP        netip.Addr `json:"ip,omitzero"`
	Direction Direction  `json:"direction"`
	// InterfaceID and InstanceID are set when the actor is one of ours.
	InterfaceID string `json:"interface_id,omitempty"`
	InstanceID  string `json:"instance_id,omitempty"`
	// User is the AWS identity of findings from CloudTrail and GuardDuty:
	// the ARN, else the user name.
	User string `json:"user,omitempty"`
}

// Target is what it was done to. IP is absent for sweeps over many hosts.
type Target struct {
	IP          netip.Addr `json:"ip,omitzero"`
	InterfaceID string     `json:"interface_id,omitempty"`
	InstanceID  string     `json:"instance_id,omitempty"`
	Ports       []uint16   `json:"ports,omitempty"`
	// Resource names a target that is not an address: an AWS resource id
	// or ARN (security group, trail, detector, instance) or a user.
	Resource string `json:"resource,omitempty"`
}

// Finding is one detected activity, in the JSON shape of DESIGN.md.
type Finding struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Severity  float64   `json:"severity"`
	Title     string    `json:"title"`
	Actor     Actor     `json:"actor"`
	Target    Target    `json:"target"`
	Count     int64     `json:"count"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Archived  bool      `json:"archived"`
	// Feedback is "", "USEFUL" or "NOT_USEFUL", as in GuardDuty.
	Feedback string `json:"feedback,omitempty"`
	// Evidence holds the numbers the detector decided on.
	Evidence map[string]any `json:"evidence,omitempty"`
	// Description explains the finding in a sentence or two.
	Description string `json:"description,omitempty"`
}

// ID returns the stable identity of a finding: the same type, actor and
// target give the same id, so repeated activity updates one finding.
func ID(typ string, actor netip.Addr, target string) string {
	h := sha256.New()
	h.Write([]byte(typ))
	h.Write([]byte{0})
	h.Write([]byte(actor.String()))
	h.Write([]byte{0})
	h.Write([]byte(target))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Severity levels on GuardDuty's scale.
const (
	Low    = 2.0 // 1.0–3.9
	Medium = 5.0 // 4.0–6.9
	High   = 8.0 // 7.0–8.9
)

// Level names a severity as GuardDuty does: Low, Medium or High.
func Level(sev float64) string {
	switch {
	case sev >= 7:
		return "High"
	case sev >= 4:
		return "Medium"
	}
	return "Low"
}
