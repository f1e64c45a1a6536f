package detect

import "github.com/flowguard/flowguard/internal/finding"

// bruteForce raises UnauthorizedAccess:EC2/SSHBruteForce and RDPBruteForce
// (low: our instance is the target) for an outside source's connections
// (distinct client ports) to one host's SSH or RDP port, over the window
// and the previous one.
type bruteForce struct {
	set      BruteForceSettings
	rdpPorts *[1024]uint64
	sshPorts *[1024]uint64
}

func init() {
	register("brute_force", orderBruteForce, func(e *Engine) detector {
		if !e.set.BruteForce.Enabled {
			return nil
		}
		return &bruteForce{e.set.BruteForce, e.rdpPorts, e.sshPorts}
	})
}

// bruteForceType names the finding for a port: RDP when the port is an RDP
// port only, else SSH.
func bruteForceType(ssh, rdp *[1024]uint64, port uint16) string {
	if hasPort(rdp, port) && !hasPort(ssh, port) {
		return TypeRDPBruteForce
	}
	return TypeSSHBruteForce
}

func (d *bruteForce) judge(j *judgement) {
	for i := range j.sources {
		r := &j.sources[i]
		if r.s.nbf == 0 && (r.big == nil || r.big.bf == nil) ||
			bfAttempts(r.s, r.big)+bfAttempts(r.ps, r.pbig) < d.set.MinAttempts {
			continue
		}
		cur, old := bfSets(r.s, r.big), bfSets(r.ps, r.pbig)
		for pr, set := range cur {
			o := old[pr]
			n := set.unionLen(o)
			if n < d.set.MinAttempts {
				continue
			}
			count := set.len()
			if o != nil && !j.reportedIn(r.ps, repBrute) {
				count = n
			}
			j.mark(r, repBrute)
			port := uint16(pr)
			first, last := r.span()
			j.emit(spec{typ: bruteForceType(d.sshPorts, d.rdpPorts, port), sev: finding.Low, actor: r.key, dir: finding.Inbound,
				target: j.e.hosts[pr>>16].addr, ports: []uint16{port}, count: int64(count),
				first: first, last: last, samples: r.samples(),
				ev:   evidence{finding.EvAttempts: int64(count), finding.EvPeakWindowAttempts: int64(n)},
				rule: j.windowRule("connections (distinct client ports) from one source to one host's SSH or RDP port at least min_attempts"),
				thr:  map[string]any{"min_attempts": d.set.MinAttempts, "window": j.set.Window.String()}})
		}
	}
}

// bfAttempts returns a source's SSH and RDP attempts in a window, over all
// its targets: a bound on what one target saw.
func bfAttempts(s *extState, big *extBig) int {
	switch {
	case s == nil:
		return 0
	case big != nil && big.bf != nil:
		n := 0
		for _, ps := range big.bf {
			n += ps.len()
		}
		return n
	}
	return int(s.nbf)
}

func bfSets(s *extState, big *extBig) map[uint64]*portSet {
	switch {
	case s == nil:
		return nil
	case big != nil && big.bf != nil:
		return big.bf
	case s.nbf > 0:
		ps := &portSet{}
		for _, sp := range s.bfSports[:s.nbf] {
			ps.add(sp)
		}
		return map[uint64]*portSet{s.bfPair: ps}
	}
	return nil
}
