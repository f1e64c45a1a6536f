package detect

import "github.com/flowguard/flowguard/internal/finding"

// threatList raises UnauthorizedAccess:EC2/MaliciousIPCaller.Custom
// (medium) for any record between one of our hosts and an address on a
// threat list; actor.direction is inbound when the listed host started it.
type threatList struct{}

func init() {
	register("threat_list", orderHost, func(e *Engine) detector {
		if !e.set.ThreatList.Enabled {
			return nil
		}
		return threatList{}
	})
}

func (threatList) judge(j *judgement) {
	for k, a := range j.p.pend {
		if k.t != typThreat {
			continue
		}
		dir := finding.Outbound
		if a.inbound {
			dir = finding.Inbound
		}
		j.emit(spec{typ: TypeMaliciousCaller, sev: finding.Medium, actor: k.actor, dir: dir, target: k.target,
			count: int64(a.count), first: a.first, last: a.last, samples: a.samples,
			ev: evidence{finding.EvRecords: int64(a.count), finding.EvAccepted: int64(a.accepted),
				finding.EvRejected: int64(a.rejected), finding.EvBytes: int64(a.bytes)},
			rule: "any record between one of our hosts and an address on a threat list"})
	}
}
