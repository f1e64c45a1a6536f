// Package guardduty brings Amazon GuardDuty's findings into flowguard's
// pipeline: EventBridge "GuardDuty Finding" events (files, SQS, Lambda)
// and the GuardDuty API (ListFindings/GetFindings), kept with their type,
// severity, resource and actor, routed through the same guards, blockers,
// notifiers and dedup as flowguard's own findings; archive and feedback
// given on either side are carried to the other.
package guardduty

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
)

// DetailType is the EventBridge detail-type of GuardDuty findings.
const DetailType = "GuardDuty Finding"

// Finding is GuardDuty's finding as its API and EventBridge write it (the
// fields flowguard keeps). JSON names match without regard to case, so
// the SDK's types.Finding, marshalled, decodes into it too.
type Finding struct {
	SchemaVersion string   `json:"schemaVersion"`
	AccountID     string   `json:"accountId"`
	Region        string   `json:"region"`
	ID            string   `json:"id"`
	ARN           string   `json:"arn"`
	Type          string   `json:"type"`
	Severity      float64  `json:"severity"`
	Title         string   `json:"title"`
	Description   string   `json:"description"`
	CreatedAt     string   `json:"createdAt"`
	UpdatedAt     string   `json:"updatedAt"`
	Resource      resource `json:"resource"`
	Service       service  `json:"service"`
}

type resource struct {
	ResourceType    string `json:"resourceType"`
	InstanceDetails *struct {
		InstanceID        string `json:"instanceId"`
		NetworkInterfaces []struct {
			NetworkInterfaceID string `json:"networkInterfaceId"`
			PrivateIPAddress   string `json:"privateIpAddress"`
			PublicIP           string `json:"publicIp"`
		} `json:"networkInterfaces"`
	} `json:"instanceDetails"`
	AccessKeyDetails *struct {
		AccessKeyID string `json:"accessKeyId"`
		PrincipalID string `json:"principalId"`
		UserName    string `json:"userName"`
		UserType    string `json:"userType"`
	} `json:"accessKeyDetails"`
}

type remoteIP struct {
	IPAddressV4 string `json:"ipAddressV4"`
	IPAddressV6 string `json:"ipAddressV6"`
}

type port struct {
	Port int `json:"port"`
}

type service struct {
	DetectorID     string `json:"detectorId"`
	Archived       bool   `json:"archived"`
	Count          int64  `json:"count"`
	EventFirstSeen string `json:"eventFirstSeen"`
	EventLastSeen  string `json:"eventLastSeen"`
	UserFeedback   string `json:"userFeedback"`
	ResourceRole   string `json:"resourceRole"`
	Action         struct {
		ActionType              string `json:"actionType"`
		NetworkConnectionAction *struct {
			ConnectionDirection string   `json:"connectionDirection"`
			RemoteIPDetails     remoteIP `json:"remoteIpDetails"`
			LocalPortDetails    port     `json:"localPortDetails"`
			Blocked             bool     `json:"blocked"`
		} `json:"networkConnectionAction"`
		PortProbeAction *struct {
			PortProbeDetails []struct {
				LocalPortDetails port     `json:"localPortDetails"`
				RemoteIPDetails  remoteIP `json:"remoteIpDetails"`
			} `json:"portProbeDetails"`
		} `json:"portProbeAction"`
		AWSAPICallAction *struct {
			API             string   `json:"api"`
			ServiceName     string   `json:"serviceName"`
			CallerType      string   `json:"callerType"`
			RemoteIPDetails remoteIP `json:"remoteIpDetails"`
		} `json:"awsApiCallAction"`
		DNSRequestAction *struct {
			Domain string `json:"domain"`
		} `json:"dnsRequestAction"`
	} `json:"action"`
}

// Evidence keys that tie a flowguard finding to GuardDuty's.
const (
	EvSource     = "source"      // "guardduty"
	EvDetectorID = "detector_id" // the detector that raised it
	EvARN        = "guardduty_arn"
)

// Source is the evidence "source" of ingested GuardDuty findings.
const Source = "guardduty"

func addr(r remoteIP) netip.Addr {
	for _, s := range []string{r.IPAddressV4, r.IPAddressV6} {
		if a, err := netip.ParseAddr(s); err == nil {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// Convert turns a GuardDuty finding into flowguard's finding. The id is
// GuardDuty's own (32 hex digits, the form of flowguard's ids), so that
// GuardDuty's updates of the finding update the same one.
func (g *Finding) Convert() (finding.Finding, error) {
	if g.ID == "" || g.Type == "" {
		return finding.Finding{}, fmt.Errorf("GuardDuty finding without id or type")
	}
	f := finding.Finding{
		ID: g.ID, Type: g.Type, Severity: g.Severity, Title: g.Title, Description: g.Description,
		Count: max(g.Service.Count, 1), Archived: g.Service.Archived, Feedback: g.Service.UserFeedback,
		FirstSeen: parseTime(g.Service.EventFirstSeen), LastSeen: parseTime(g.Service.EventLastSeen),
		Actor: finding.Actor{Direction: finding.Inbound},
		Evidence: map[string]any{EvSource: Source, EvDetectorID: g.Service.DetectorID, EvARN: g.ARN,
			"account": g.AccountID, "region": g.Region, "resource_type": g.Resource.ResourceType},
	}
	if f.FirstSeen.IsZero() {
		f.FirstSeen = parseTime(g.CreatedAt)
	}
	if f.LastSeen.IsZero() {
		f.LastSeen = parseTime(g.UpdatedAt)
	}
	if f.LastSeen.Before(f.FirstSeen) {
		f.LastSeen = f.FirstSeen
	}
	if f.Title == "" {
		f.Title = g.Type
	}
	var instance, eni string
	var local netip.Addr
	if d := g.Resource.InstanceDetails; d != nil {
		instance = d.InstanceID
		if len(d.NetworkInterfaces) > 0 {
			eni = d.NetworkInterfaces[0].NetworkInterfaceID
			local, _ = netip.ParseAddr(d.NetworkInterfaces[0].PrivateIPAddress)
		}
		f.Target = finding.Target{IP: local, InterfaceID: eni, InstanceID: instance, Resource: instance}
	}
	if k := g.Resource.AccessKeyDetails; k != nil {
		f.Actor.User = k.UserName
		if f.Actor.User == "" {
			f.Actor.User = k.PrincipalID
		}
		f.Target.Resource = k.AccessKeyID
		f.Evidence["user_type"] = k.UserType
	}
	a := g.Service.Action
	f.Evidence["action_type"] = a.ActionType
	switch {
	case a.NetworkConnectionAction != nil:
		n := a.NetworkConnectionAction
		remote := addr(n.RemoteIPDetails)
		if strings.EqualFold(n.ConnectionDirection, "OUTBOUND") {
			// Our instance reached out: it is the actor.
			f.Actor = finding.Actor{IP: local, Direction: finding.Outbound, InterfaceID: eni, InstanceID: instance}
			f.Target = finding.Target{IP: remote, Resource: instance}
		} else {
			f.Actor.IP = remote
		}
		if n.LocalPortDetails.Port > 0 && !strings.EqualFold(n.ConnectionDirection, "OUTBOUND") {
			f.Target.Ports = []uint16{uint16(n.LocalPortDetails.Port)}
		}
	case a.PortProbeAction != nil:
		for _, d := range a.PortProbeAction.PortProbeDetails {
			if ip := addr(d.RemoteIPDetails); ip.IsValid() && !f.Actor.IP.IsValid() {
				f.Actor.IP = ip
			}
			if p := uint16(d.LocalPortDetails.Port); p > 0 && !containsPort(f.Target.Ports, p) {
				f.Target.Ports = append(f.Target.Ports, p)
			}
		}
	case a.AWSAPICallAction != nil:
		c := a.AWSAPICallAction
		f.Actor.IP = addr(c.RemoteIPDetails)
		f.Evidence["api"], f.Evidence["service_name"] = c.API, c.ServiceName
	case a.DNSRequestAction != nil:
		f.Actor = finding.Actor{IP: local, Direction: finding.Outbound, InterfaceID: eni, InstanceID: instance}
		f.Evidence["domain"] = a.DNSRequestAction.Domain
	}
	return f, nil
}

func containsPort(ps []uint16, p uint16) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

// ParseEvent reads an EventBridge "GuardDuty Finding" event.
func ParseEvent(raw []byte) (finding.Finding, error) {
	var ev struct {
		DetailType string  `json:"detail-type"`
		Detail     Finding `json:"detail"`
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		return finding.Finding{}, fmt.Errorf("GuardDuty finding event: %w", err)
	}
	if ev.DetailType != DetailType {
		return finding.Finding{}, fmt.Errorf("EventBridge event %q is not a %q", ev.DetailType, DetailType)
	}
	return ev.Detail.Convert()
}

// IsGuardDuty reports whether a flowguard finding was ingested from
// GuardDuty, and gives its detector.
func IsGuardDuty(f finding.Finding) (detectorID string, ok bool) {
	if f.Evidence[EvSource] != Source {
		return "", false
	}
	d, _ := f.Evidence[EvDetectorID].(string)
	return d, d != ""
}
