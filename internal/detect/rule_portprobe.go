package detect

import (
	"fmt"

	"github.com/flowguard/flowguard/internal/finding"
)

// portProbe raises Recon:EC2/PortProbeUnprotectedPort when accepted
// payload-less attempts on a sensitive port of one host come from at least
// min_sources distinct outside sources (low; high for Elasticsearch).
type portProbe struct{ set PortProbeSettings }

func init() {
	register("port_probe", orderHost, func(e *Engine) detector {
		if !e.set.PortProbe.Enabled {
			return nil
		}
		return &portProbe{e.set.PortProbe}
	})
}

func (d *portProbe) judge(j *judgement) {
	for i := range j.hosts {
		r := &j.hosts[i]
		hp, h := r.hp, r.h
		for port, ds := range hp.probeSrcs {
			var o *distinct
			if r.ph != nil {
				o = r.ph.probeSrcs[port]
			}
			n := ds.unionCount(o)
			if n < d.set.MinSources {
				continue
			}
			sev := finding.Low
			if port == 9200 || port == 9300 {
				sev = finding.High
			}
			j.emit(spec{typ: TypePortProbe, sev: sev, dir: finding.Inbound, target: h.addr,
				idTarget: fmt.Sprintf("%s:%d", h.addr.addr(), port), ports: []uint16{port},
				count: int64(ds.count()), first: hp.first, last: hp.last,
				ev:   evidence{finding.EvDistinctSources: int64(n)},
				rule: j.windowRule("accepted payload-less attempts on a sensitive port of one host from at least min_sources distinct outside sources"),
				thr:  map[string]any{"min_sources": d.set.MinSources, "ports": d.set.Ports}})
		}
	}
}
