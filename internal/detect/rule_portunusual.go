package detect

import (
	"fmt"

	"github.com/flowguard/flowguard/internal/finding"
)

// portUnusual raises Behavior:EC2/NetworkPortUnusual (medium) when, after
// its learning period, one of our hosts makes an accepted connection to a
// server port it did not use while learning.
type portUnusual struct{ learning Duration }

func init() {
	register("network_port_unusual", orderHost, func(e *Engine) detector {
		if !e.set.NetworkPortUnusual.Enabled {
			return nil
		}
		return &portUnusual{e.set.LearningPeriod}
	})
}

func (d *portUnusual) judge(j *judgement) {
	for i := range j.hosts {
		r := &j.hosts[i]
		if !r.ready {
			continue
		}
		h, hp := r.h, r.hp
		for port, rk := range hp.used {
			if h.ports.has(port) {
				continue
			}
			j.emit(spec{typ: TypePortUnusual, sev: finding.Medium, actor: h.addr, dir: finding.Outbound,
				target: rk, idTarget: fmt.Sprintf("port:%d", port), ports: []uint16{port}, count: 1,
				first: hp.first, last: hp.last,
				ev:   evidence{finding.EvLearnedPorts: int64(h.ports.len())},
				rule: "an accepted outbound connection to a service port the host did not use during its learning period",
				thr:  map[string]any{"learning_period": d.learning.String()}})
		}
	}
}
