package detect

import "github.com/flowguard/flowguard/internal/finding"

// bruteForceOurs raises UnauthorizedAccess:EC2/SSHBruteForce and
// RDPBruteForce (high: our instance is the actor) for one of our hosts'
// connections to another host's SSH or RDP port, unless the host is a NAT
// gateway or proxy passing others' connections on.
type bruteForceOurs struct {
	set                BruteForceSettings
	sshPorts, rdpPorts *[1024]uint64
}

func init() {
	register("brute_force_ours", orderHost, func(e *Engine) detector {
		if !e.set.BruteForce.Enabled {
			return nil
		}
		return &bruteForceOurs{e.set.BruteForce, e.sshPorts, e.rdpPorts}
	})
}

func (d *bruteForceOurs) judge(j *judgement) {
	for i := range j.hosts {
		r := &j.hosts[i]
		hp, ph := r.hp, r.ph
		for k, set := range hp.bf {
			var o *portSet
			if ph != nil {
				o = ph.bf[k]
			}
			n := set.unionLen(o)
			if n < d.set.MinAttempts {
				continue
			}
			dir := finding.Outbound
			if j.e.cl.home.contains(k.target.addr(), k.target) {
				dir = finding.Lateral
			}
			if tid, ok := j.e.hostIdx[k.target]; ok && j.e.forwards(j.p, tid, k.port) {
				continue // a NAT gateway or proxy passing the connections on
			}
			count := set.len()
			if o != nil && !ph.bfReported[k] {
				count = n
			}
			if !j.open {
				if hp.bfReported == nil {
					hp.bfReported = map[bfKey]bool{}
				}
				hp.bfReported[k] = true
			}
			j.emit(spec{typ: bruteForceType(d.sshPorts, d.rdpPorts, k.port), sev: finding.High, actor: r.h.addr, dir: dir, target: k.target,
				ports: []uint16{k.port}, count: int64(count), first: hp.first, last: hp.last, samples: hp.samples,
				ev:   evidence{finding.EvAttempts: int64(count), finding.EvPeakWindowAttempts: int64(n)},
				rule: j.windowRule("connections (distinct client ports) from one of our hosts to one host's SSH or RDP port at least min_attempts"),
				thr:  map[string]any{"min_attempts": d.set.MinAttempts}})
		}
	}
}
