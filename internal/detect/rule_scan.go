package detect

import (
	"fmt"

	"github.com/flowguard/flowguard/internal/finding"
)

// inboundScan raises Recon:EC2/Portscan for an outside source's probes:
// vertical (min_ports distinct ports of one host) and sweeps (one port of
// min_hosts hosts of ours), over the window and the previous one.
type inboundScan struct{ set PortscanSettings }

func init() {
	register("portscan", orderScan, func(e *Engine) detector {
		if !e.set.Portscan.Enabled {
			return nil
		}
		return &inboundScan{e.set.Portscan}
	})
}

func (d *inboundScan) judge(j *judgement) {
	for i := range j.sources {
		r := &j.sources[i]
		if r.s.npairs > 0 || r.big != nil {
			d.judgeSource(j, r)
		}
	}
}

func (d *inboundScan) judgeSource(j *judgement, r *sourceRef) {
	set := d.set
	nCur, nPrev := pairCount(r.s, r.big), pairCount(r.ps, r.pbig)
	if nCur+nPrev < min(set.MinPorts, set.MinHosts) {
		return
	}
	byHost := map[uint32]*portSet{}
	byPort := map[uint16]*idSet{}
	curHost := map[uint32]int{}
	curPort := map[uint16]int{}
	index := func(h uint32, p uint16, cur bool) {
		hs := byHost[h]
		if hs == nil {
			hs = &portSet{}
			byHost[h] = hs
		}
		newPair := hs.add(p)
		is := byPort[p]
		if is == nil {
			is = &idSet{}
			byPort[p] = is
		}
		is.add(h)
		if cur && newPair {
			curHost[h]++
			curPort[p]++
		}
	}
	pairsOf(r.s, r.big, func(h uint32, p uint16) { index(h, p, true) })
	prevCounts := r.ps != nil && !j.reportedIn(r.ps, repScan)
	pairsOf(r.ps, r.pbig, func(h uint32, p uint16) { index(h, p, prevCounts) })
	first, last := r.span()
	fired := false
	for h, ports := range byHost {
		if ports.len() < set.MinPorts || curHost[h] == 0 {
			continue
		}
		fired = true
		j.emit(spec{typ: TypePortscan, sev: finding.Medium, actor: r.key, dir: finding.Inbound,
			target: j.e.hosts[h].addr, ports: lowestPorts(32, ports), count: int64(curHost[h]),
			first: first, last: last, samples: r.samples(),
			ev:   evidence{finding.EvDistinctPorts: int64(ports.len()), finding.EvProbes: int64(curHost[h])},
			rule: j.windowRule("failed or payload-less attempts from one source on at least min_ports distinct ports of one host"),
			thr:  map[string]any{"min_ports": set.MinPorts, "window": j.set.Window.String()}})
	}
	for port, hosts := range byPort {
		n := hosts.len()
		if n < set.MinHosts || curPort[port] == 0 {
			continue
		}
		fired = true
		j.emit(spec{typ: TypePortscan, sev: finding.Medium, actor: r.key, dir: finding.Inbound,
			idTarget: fmt.Sprintf("sweep:%d", port), ports: []uint16{port}, count: int64(curPort[port]),
			first: first, last: last, samples: r.samples(),
			ev:   evidence{finding.EvDistinctHosts: int64(n), finding.EvProbes: int64(curPort[port])},
			rule: j.windowRule("failed or payload-less attempts from one source on one port of at least min_hosts distinct hosts of ours"),
			thr:  map[string]any{"min_hosts": set.MinHosts, "window": j.set.Window.String()}})
	}
	if fired {
		j.mark(r, repScan)
	}
}

// pairsOf calls fn for every distinct probe (host, port) of a source.
func pairsOf(s *extState, big *extBig, fn func(host uint32, port uint16)) {
	switch {
	case s == nil:
	case big == nil:
		for _, pr := range s.pairs[:s.npairs] {
			fn(uint32(pr>>16), uint16(pr))
		}
	case !big.overflow:
		for _, pr := range big.pairs {
			fn(uint32(pr>>16), uint16(pr))
		}
	default:
		for h, ports := range big.byHost {
			ports.each(func(p uint16) bool { fn(h, p); return true })
		}
	}
}

func pairCount(s *extState, big *extBig) int {
	switch {
	case s == nil:
		return 0
	case big == nil:
		return int(s.npairs)
	case !big.overflow:
		return len(big.pairs)
	}
	n := 0
	for _, ps := range big.byHost {
		n += ps.len()
	}
	return n
}
