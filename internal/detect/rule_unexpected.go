package detect

import (
	"fmt"

	"github.com/flowguard/flowguard/internal/finding"
)

// unexpectedSource raises Policy:EC2/UnexpectedSource (medium) for an
// accepted inbound connection to a port of an expected_sources rule from a
// source outside its list and outside the home networks.
type unexpectedSource struct{}

func init() {
	register("unexpected_source", orderHost, func(e *Engine) detector {
		if !e.set.UnexpectedSource.Enabled {
			return nil
		}
		return unexpectedSource{}
	})
}

func (unexpectedSource) judge(j *judgement) {
	for k, a := range j.p.pend {
		if k.t != typUnexpected {
			continue
		}
		j.emit(spec{typ: TypeUnexpected, sev: finding.Medium, actor: k.actor, dir: finding.Inbound, target: k.target,
			idTarget: fmt.Sprintf("%s:%d", k.target.addr(), k.port), ports: []uint16{k.port},
			count: int64(a.count), first: a.first, last: a.last, samples: a.samples,
			ev:   evidence{finding.EvAccepted: int64(a.accepted), finding.EvBytes: int64(a.bytes)},
			rule: "an accepted inbound connection to a port of expected_sources from a source outside its list and outside the home networks"})
	}
}
