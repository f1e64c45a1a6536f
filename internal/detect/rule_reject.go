package detect

import (
	"slices"

	"github.com/flowguard/flowguard/internal/finding"
)

// repeatedReject raises Recon:EC2/RepeatedReject (low) when an outside
// source's connection attempts (not rejected return traffic) are rejected
// at least min_rejects times within the window and the previous one, and
// no port scan or brute force explains them. It is the classic query
// (filter action="REJECT" | stats count() by srcaddr) with direction and
// return traffic handled; slowReject is its long horizon.
type repeatedReject struct{ set RepeatedRejectSettings }

func init() {
	register("repeated_reject", orderRejects, func(e *Engine) detector {
		if !e.set.RepeatedReject.Enabled {
			return nil
		}
		return &repeatedReject{e.set.RepeatedReject}
	})
}

func (d *repeatedReject) judge(j *judgement) {
	for i := range j.sources {
		r := &j.sources[i]
		s, ps := r.s, r.ps
		if s.rejects == 0 || j.reported(r, repScan|repBrute) {
			continue
		}
		n, count := s.rejects, s.rejects
		if ps != nil {
			n += ps.rejects
			if !j.reportedIn(ps, repReject) {
				count += ps.rejects
			}
		}
		if int(n) < d.set.MinRejects {
			continue
		}
		j.mark(r, repReject)
		hosts := pairHosts(s, r.big, ps, r.pbig)
		first, last := r.span()
		sp := spec{typ: TypeRepeatedReject, sev: finding.Low, actor: r.key, dir: finding.Inbound,
			count: int64(count), first: first, last: last, samples: r.samples(), idTarget: "-",
			ev:   evidence{finding.EvRejected: int64(count), finding.EvDistinctHosts: int64(max(len(hosts), 1)), finding.EvPeakWindowRejects: int64(n)},
			rule: j.windowRule("an outside source's connection attempts rejected at least min_rejects times (rejected return traffic is not counted)"),
			thr:  map[string]any{"min_rejects": d.set.MinRejects, "window": j.set.Window.String()}}
		if len(hosts) == 1 {
			sp.target = j.e.hosts[hosts[0]].addr
		} else if len(hosts) == 0 && s.host != 0 {
			sp.target = j.e.hosts[s.host-1].addr
		}
		j.emit(sp)
	}
}

func pairHosts(s *extState, big *extBig, ps *extState, pbig *extBig) []uint32 {
	var hs []uint32
	add := func(h uint32, _ uint16) {
		if !slices.Contains(hs, h) && len(hs) < 64 {
			hs = append(hs, h)
		}
	}
	pairsOf(s, big, add)
	pairsOf(ps, pbig, add)
	return hs
}
