package detect

import "github.com/flowguard/flowguard/internal/finding"

// returnTraffic raises Policy:EC2/StatelessReturnTrafficRejected (low) for
// our host whose connections' responses were rejected on the way back: a
// stateless network ACL without a rule for return traffic.
type returnTraffic struct{}

func init() {
	register("return_traffic", orderHost, func(e *Engine) detector {
		if !e.set.ReturnTraffic.Enabled {
			return nil
		}
		return returnTraffic{}
	})
}

func (returnTraffic) judge(j *judgement) {
	for i := range j.hosts {
		r := &j.hosts[i]
		hp := r.hp
		if hp.retRejects == 0 {
			continue
		}
		j.emit(spec{typ: TypeReturnRejected, sev: finding.Low, actor: r.h.addr, dir: finding.Outbound,
			idTarget: "return-traffic", ports: lowestPorts(8, &hp.retPorts), count: int64(hp.retRejects),
			first: hp.first, last: hp.last, samples: hp.samples,
			ev:   evidence{finding.EvRejected: int64(hp.retRejects), finding.EvDistinctRemotes: int64(hp.retRemotes.count())},
			rule: "responses (from a service port to an ephemeral port, or SYN-ACK) to connections this host started, rejected: a stateless network ACL without a rule for return traffic",
		})
	}
}
