package detect

import (
	"fmt"

	"github.com/flowguard/flowguard/internal/finding"
)

// exfiltration raises Exfiltration:EC2/UnusualOutboundVolume (high) when
// one of our hosts sends at least min_bytes to one outside host in a
// window and, once its baseline is learned, baseline_factor times its usual
// largest per-destination volume.
type exfiltration struct {
	set      ExfiltrationSettings
	learning Duration
}

func init() {
	register("exfiltration", orderHost, func(e *Engine) detector {
		if !e.set.Exfiltration.Enabled {
			return nil
		}
		return &exfiltration{e.set.Exfiltration, e.set.LearningPeriod}
	})
}

func (d *exfiltration) judge(j *judgement) {
	for i := range j.hosts {
		r := &j.hosts[i]
		h := r.h
		for rk, rm := range r.hp.remotes {
			if rm.bytesOut < uint64(d.set.MinBytes) || (r.ready && float64(rm.bytesOut) < d.set.BaselineFactor*h.maxBytes) ||
				j.e.relay(r.hp, rm.port, 0, rm.bytesOut) {
				continue
			}
			r.alert |= alertBytes
			j.emit(spec{typ: TypeExfiltration, sev: finding.High, actor: h.addr, dir: finding.Outbound,
				target: rk, ports: []uint16{rm.port}, count: 1, first: rm.first, last: rm.last, samples: rm.samples,
				ev:   evidence{finding.EvBytes: int64(rm.bytesOut), finding.EvPackets: int64(rm.pktsOut), finding.EvBaselineBytes: int64(h.maxBytes)},
				rule: fmt.Sprintf("at least min_bytes from one of our hosts to one outside host in a %s window, and baseline_factor times the host's usual largest per-destination volume once learned", j.set.Window),
				thr:  map[string]any{"min_bytes": d.set.MinBytes, "baseline_factor": d.set.BaselineFactor, "learning_period": d.learning.String()}})
		}
	}
}
