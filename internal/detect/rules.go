package detect

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
)

// closePane judges window p: every rule over its counts (and, for rules
// counted per actor, the previous window's), then trains the baselines.
func (e *Engine) closePane(p *pane) {
	delete(e.panes, p.idx)
	e.metrics.Windows++
	prev := e.prev
	if prev != nil && prev.idx != p.idx-1 {
		prev = nil
	}
	emit := !e.learning
	heavy := uint32(min(e.set.InboundFlood.HeavySourcePackets, 1<<32-1))
	for key, i := range p.ext {
		s := &p.exts[i]
		if s.host != 0 && s.packets >= heavy {
			hp := p.hosts[s.host-1]
			hp.heavyN++
			hp.heavyPkts += uint64(s.packets)
			if len(hp.heavy) < 1024 {
				hp.heavy = append(hp.heavy, heavySrc{key, s.packets})
			}
		}
		if emit {
			e.judgeExt(p, prev, key, s)
		}
	}
	ids := make([]uint32, 0, len(p.hosts))
	for id := range p.hosts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		var ph *hostPane
		if prev != nil {
			ph = prev.hosts[id]
		}
		e.judgeHost(p, p.hosts[id], ph, emit)
	}
	if emit {
		for k, a := range p.pend {
			e.emitPend(k, a)
		}
	}
	e.prev = p
}

func (p *pane) big(s *extState) *extBig {
	if s == nil || s.big == 0 {
		return nil
	}
	return p.bigs[s.big-1]
}

func (e *Engine) windowRule(what string) string {
	return fmt.Sprintf("%s within two consecutive %s windows", what, e.set.Window)
}

// judgeExt applies the per-source rules to one outside source.
func (e *Engine) judgeExt(p, prev *pane, key addrKey, s *extState) {
	var ps *extState
	if prev != nil {
		if j, ok := prev.ext[key]; ok {
			ps = &prev.exts[j]
		}
	}
	big, pbig := p.big(s), prev.bigOrNil(ps)
	first, last := s.first, s.last
	if ps != nil {
		first = min(first, ps.first)
		last = max(last, ps.last)
	}
	var samples []Sample
	if big != nil {
		samples = big.samples
	}
	// Port scans and sweeps.
	if ps2 := e.set.Portscan; ps2.Enabled && (s.npairs > 0 || big != nil) {
		e.judgeScan(key, s, big, ps, pbig, first, last, samples)
	}
	// Brute force.
	if bf := e.set.BruteForce; bf.Enabled && (s.nbf > 0 || (big != nil && big.bf != nil)) {
		cur, old := bfSets(s, big), bfSets(ps, pbig)
		for pr, set := range cur {
			o := old[pr]
			n := set.unionLen(o)
			if n < bf.MinAttempts {
				continue
			}
			count := set.len()
			if o != nil && ps.reported&repBrute == 0 {
				count = n
			}
			s.reported |= repBrute
			if ps != nil {
				ps.reported |= repBrute
			}
			port := uint16(pr)
			typ := TypeSSHBruteForce
			if hasPort(e.rdpPorts, port) && !hasPort(e.sshPorts, port) {
				typ = TypeRDPBruteForce
			}
			e.upsert(spec{typ: typ, sev: finding.Low, actor: key, dir: finding.Inbound,
				target: e.hosts[pr>>16].addr, ports: []uint16{port}, count: int64(count),
				first: first, last: last, samples: samples,
				ev:   map[string]int64{"attempts": int64(count), "peak_window_attempts": int64(n)},
				rule: e.windowRule("connections (distinct client ports) from one source to one host's SSH or RDP port at least min_attempts"),
				thr:  map[string]any{"min_attempts": bf.MinAttempts, "window": e.set.Window.String()}})
		}
	}
	// Repeated rejects, when no stronger finding explains them.
	stronger := s.reported&(repScan|repBrute) != 0 || (ps != nil && ps.reported&(repScan|repBrute) != 0)
	if rr := e.set.RepeatedReject; rr.Enabled && s.rejects > 0 && !stronger {
		n := s.rejects
		count := s.rejects
		if ps != nil {
			n += ps.rejects
			if ps.reported&repReject == 0 {
				count += ps.rejects
			}
		}
		if int(n) >= rr.MinRejects {
			s.reported |= repReject
			if ps != nil {
				ps.reported |= repReject
			}
			hosts := pairHosts(s, big, ps, pbig)
			sp := spec{typ: TypeRepeatedReject, sev: finding.Low, actor: key, dir: finding.Inbound,
				count: int64(count), first: first, last: last, samples: samples, idTarget: "-",
				ev:   map[string]int64{"rejected": int64(count), "distinct_hosts": int64(max(len(hosts), 1)), "peak_window_rejects": int64(n)},
				rule: e.windowRule("an outside source's connection attempts rejected at least min_rejects times (rejected return traffic is not counted)"),
				thr:  map[string]any{"min_rejects": rr.MinRejects, "window": e.set.Window.String()}}
			if len(hosts) == 1 {
				sp.target = e.hosts[hosts[0]].addr
			} else if len(hosts) == 0 && s.host != 0 {
				sp.target = e.hosts[s.host-1].addr
			}
			e.upsert(sp)
		}
	}
}

func (p *pane) bigOrNil(s *extState) *extBig {
	if p == nil {
		return nil
	}
	return p.big(s)
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

func (e *Engine) judgeScan(key addrKey, s *extState, big *extBig, ps *extState, pbig *extBig, first, last uint32, samples []Sample) {
	set := e.set.Portscan
	nCur, nPrev := pairCount(s, big), pairCount(ps, pbig)
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
	pairsOf(s, big, func(h uint32, p uint16) { index(h, p, true) })
	prevCounts := ps != nil && ps.reported&repScan == 0
	pairsOf(ps, pbig, func(h uint32, p uint16) { index(h, p, prevCounts) })
	fired := false
	for h, ports := range byHost {
		if ports.len() < set.MinPorts || curHost[h] == 0 {
			continue
		}
		fired = true
		e.upsert(spec{typ: TypePortscan, sev: finding.Medium, actor: key, dir: finding.Inbound,
			target: e.hosts[h].addr, ports: lowestPorts(32, ports), count: int64(curHost[h]),
			first: first, last: last, samples: samples,
			ev:   map[string]int64{"distinct_ports": int64(ports.len()), "probes": int64(curHost[h])},
			rule: e.windowRule("failed or payload-less attempts from one source on at least min_ports distinct ports of one host"),
			thr:  map[string]any{"min_ports": set.MinPorts, "window": e.set.Window.String()}})
	}
	for port, hosts := range byPort {
		n := hosts.len()
		if n < set.MinHosts || curPort[port] == 0 {
			continue
		}
		fired = true
		e.upsert(spec{typ: TypePortscan, sev: finding.Medium, actor: key, dir: finding.Inbound,
			idTarget: fmt.Sprintf("sweep:%d", port), ports: []uint16{port}, count: int64(curPort[port]),
			first: first, last: last, samples: samples,
			ev:   map[string]int64{"distinct_hosts": int64(n), "probes": int64(curPort[port])},
			rule: e.windowRule("failed or payload-less attempts from one source on one port of at least min_hosts distinct hosts of ours"),
			thr:  map[string]any{"min_hosts": set.MinHosts, "window": e.set.Window.String()}})
	}
	if fired {
		s.reported |= repScan
		if ps != nil {
			ps.reported |= repScan
		}
	}
}

// judgeHost applies the per-host rules to one host of ours, then trains
// its baseline.
func (e *Engine) judgeHost(p *pane, hp, ph *hostPane, emit bool) {
	h := e.hosts[hp.id]
	if !h.seen {
		h.seen = true
		h.firstPane = p.idx
	}
	ready := h.trained || h.n > 0 && (p.idx-h.firstPane)*e.paneSec >= int64(time.Duration(e.set.LearningPeriod)/time.Second)
	floodAlert, bytesAlert := false, false
	var maxBytes uint64
	for _, r := range hp.remotes {
		maxBytes = max(maxBytes, r.bytesOut)
	}
	if emit {
		// Inbound flood.
		if fl := e.set.InboundFlood; fl.Enabled && hp.inPackets >= uint64(fl.MinPackets) {
			many := hp.heavyN >= fl.MinHeavySources && (!ready || float64(hp.heavyN) >= fl.BaselineFactor*h.heavy)
			above := ready && float64(hp.inPackets) >= fl.BaselineFactor*h.inPackets
			if many || above {
				floodAlert = true
				sp := spec{typ: TypeInboundFlood, sev: finding.High, dir: finding.Inbound, target: h.addr,
					idTarget: h.addr.addr().String(), count: int64(hp.inFlows), first: hp.first, last: hp.last,
					ev: map[string]int64{"packets": int64(hp.inPackets), "heavy_sources": int64(hp.heavyN),
						"distinct_sources": int64(hp.sources.count()), "baseline_packets": int64(h.inPackets)},
					rule: fmt.Sprintf("inbound packets in a %s window at least min_packets, from at least min_heavy_sources sources sending heavy_source_packets each, or baseline_factor times the host's baseline", e.set.Window),
					thr: map[string]any{"min_packets": fl.MinPackets, "min_heavy_sources": fl.MinHeavySources,
						"heavy_source_packets": fl.HeavySourcePackets, "baseline_factor": fl.BaselineFactor}}
				sp.actor, sp.prefix = floodActor(hp.heavy)
				e.upsert(sp)
			}
		}
		// Probes of open ports.
		if pp := e.set.PortProbe; pp.Enabled {
			for port, d := range hp.probeSrcs {
				var o *distinct
				if ph != nil {
					o = ph.probeSrcs[port]
				}
				n := d.unionCount(o)
				if n < pp.MinSources {
					continue
				}
				sev := finding.Low
				if port == 9200 || port == 9300 {
					sev = finding.High
				}
				e.upsert(spec{typ: TypePortProbe, sev: sev, dir: finding.Inbound, target: h.addr,
					idTarget: fmt.Sprintf("%s:%d", h.addr.addr(), port), ports: []uint16{port},
					count: int64(d.count()), first: hp.first, last: hp.last,
					ev:   map[string]int64{"distinct_sources": int64(n)},
					rule: e.windowRule("accepted payload-less attempts on a sensitive port of one host from at least min_sources distinct outside sources"),
					thr:  map[string]any{"min_sources": pp.MinSources, "ports": pp.Ports}})
			}
		}
		// Rejected return traffic.
		if e.set.ReturnTraffic.Enabled && hp.retRejects > 0 {
			e.upsert(spec{typ: TypeReturnRejected, sev: finding.Low, actor: h.addr, dir: finding.Outbound,
				idTarget: "return-traffic", ports: lowestPorts(8, &hp.retPorts), count: int64(hp.retRejects),
				first: hp.first, last: hp.last, samples: hp.samples,
				ev:   map[string]int64{"rejected": int64(hp.retRejects), "distinct_remotes": int64(hp.retRemotes.count())},
				rule: "responses (from a service port to an ephemeral port, or SYN-ACK) to connections this host started, rejected: a stateless network ACL without a rule for return traffic",
			})
		}
		// Outbound and lateral scans.
		if set := e.set.Portscan; set.Enabled {
			for key, op := range hp.out {
				lateral := key>>16 != 0
				port := uint16(key)
				thr := set.MinHostsOutbound
				dir := finding.Outbound
				if lateral {
					thr, dir = set.MinHosts, finding.Lateral
				}
				n := op.hosts.count()
				if n < thr || e.relay(hp, port, op.flows, 0) {
					continue
				}
				if !lateral && hp.retPorts.has(port) && 2*hp.retRemotes.count() >= n {
					// Most of the hosts answered from that port, and a
					// stateless network ACL rejected the answers: the
					// attempts failed on our side. That is the Policy
					// finding, not a scan (a scan's targets mostly do
					// not answer).
					continue
				}
				e.upsert(spec{typ: TypePortscan, sev: finding.Medium, actor: h.addr, dir: dir,
					idTarget: fmt.Sprintf("%s-sweep:%d", dir, port), ports: []uint16{port}, count: int64(op.probes),
					first: op.first, last: op.last, samples: op.samples,
					ev: map[string]int64{"distinct_hosts": int64(n), "probes": int64(op.probes), "flows": int64(op.flows)},
					rule: fmt.Sprintf("failed or payload-less attempts by one of our hosts on one port of at least %s distinct hosts in one %s window",
						map[bool]string{false: "min_hosts_outbound", true: "min_hosts"}[lateral], e.set.Window),
					thr: map[string]any{"min_hosts": set.MinHosts, "min_hosts_outbound": set.MinHostsOutbound}})
			}
		}
		// Vertical scans by one of ours.
		if set := e.set.Portscan; set.Enabled && !h.middlebox {
			for tk, ports := range hp.probed {
				if ports.len() < set.MinPorts {
					continue
				}
				dir := finding.Outbound
				if e.cl.home.contains(tk.addr(), tk) {
					dir = finding.Lateral
				}
				e.upsert(spec{typ: TypePortscan, sev: finding.Medium, actor: h.addr, dir: dir, target: tk,
					ports: lowestPorts(32, ports), count: int64(ports.len()), first: hp.first, last: hp.last, samples: hp.samples,
					ev:   map[string]int64{"distinct_ports": int64(ports.len())},
					rule: fmt.Sprintf("failed or payload-less attempts by one of our hosts on at least min_ports distinct ports of one host in one %s window", e.set.Window),
					thr:  map[string]any{"min_ports": set.MinPorts}})
			}
		}
		// Brute force by one of ours.
		if bf := e.set.BruteForce; bf.Enabled {
			for k, set := range hp.bf {
				var o *portSet
				if ph != nil {
					o = ph.bf[k]
				}
				n := set.unionLen(o)
				if n < bf.MinAttempts {
					continue
				}
				typ := TypeSSHBruteForce
				if hasPort(e.rdpPorts, k.port) && !hasPort(e.sshPorts, k.port) {
					typ = TypeRDPBruteForce
				}
				dir := finding.Outbound
				if e.cl.home.contains(k.target.addr(), k.target) {
					dir = finding.Lateral
				}
				if tid, ok := e.hostIdx[k.target]; ok && e.forwards(p, tid, k.port) {
					continue // a NAT gateway or proxy passing the connections on
				}
				count := set.len()
				if o != nil && !ph.bfReported[k] {
					count = n
				}
				if hp.bfReported == nil {
					hp.bfReported = map[bfKey]bool{}
				}
				hp.bfReported[k] = true
				e.upsert(spec{typ: typ, sev: finding.High, actor: h.addr, dir: dir, target: k.target,
					ports: []uint16{k.port}, count: int64(count), first: hp.first, last: hp.last, samples: hp.samples,
					ev:   map[string]int64{"attempts": int64(count), "peak_window_attempts": int64(n)},
					rule: e.windowRule("connections (distinct client ports) from one of our hosts to one host's SSH or RDP port at least min_attempts"),
					thr:  map[string]any{"min_attempts": bf.MinAttempts}})
			}
		}
		// Denial of service and unusual volume, per remote host.
		for rk, r := range hp.remotes {
			if dos := e.set.DenialOfService; dos.Enabled && r.pktsOut >= uint64(dos.MinPackets) &&
				r.bytesOut <= r.pktsOut*uint64(dos.MaxAvgPacketBytes) && !e.relay(hp, r.port, 0, r.bytesOut) {
				e.upsert(spec{typ: TypeDoSPrefix + dosKind(r), sev: finding.High, actor: h.addr, dir: finding.Outbound,
					target: rk, ports: []uint16{r.port}, count: 1, first: r.first, last: r.last, samples: r.samples,
					ev:   map[string]int64{"packets": int64(r.pktsOut), "bytes": int64(r.bytesOut), "packets_in": int64(r.pktsIn)},
					rule: fmt.Sprintf("at least min_packets small packets (average at most max_avg_packet_bytes) from one of our hosts to one remote host in a %s window", e.set.Window),
					thr:  map[string]any{"min_packets": dos.MinPackets, "max_avg_packet_bytes": dos.MaxAvgPacketBytes}})
			}
			if ex := e.set.Exfiltration; ex.Enabled && r.bytesOut >= uint64(ex.MinBytes) &&
				(!ready || float64(r.bytesOut) >= ex.BaselineFactor*h.maxBytes) && !e.relay(hp, r.port, 0, r.bytesOut) {
				bytesAlert = true
				e.upsert(spec{typ: TypeExfiltration, sev: finding.High, actor: h.addr, dir: finding.Outbound,
					target: rk, ports: []uint16{r.port}, count: 1, first: r.first, last: r.last, samples: r.samples,
					ev:   map[string]int64{"bytes": int64(r.bytesOut), "packets": int64(r.pktsOut), "baseline_bytes": int64(h.maxBytes)},
					rule: fmt.Sprintf("at least min_bytes from one of our hosts to one outside host in a %s window, and baseline_factor times the host's usual largest per-destination volume once learned", e.set.Window),
					thr:  map[string]any{"min_bytes": ex.MinBytes, "baseline_factor": ex.BaselineFactor, "learning_period": e.set.LearningPeriod.String()}})
			}
		}
		// Ports never used before.
		if e.set.NetworkPortUnusual.Enabled && ready {
			for port, rk := range hp.used {
				if h.ports.has(port) {
					continue
				}
				e.upsert(spec{typ: TypePortUnusual, sev: finding.Medium, actor: h.addr, dir: finding.Outbound,
					target: rk, idTarget: fmt.Sprintf("port:%d", port), ports: []uint16{port}, count: 1,
					first: hp.first, last: hp.last,
					ev:   map[string]int64{"learned_ports": int64(h.ports.len())},
					rule: "an accepted outbound connection to a service port the host did not use during its learning period",
					thr:  map[string]any{"learning_period": e.set.LearningPeriod.String()}})
			}
		}
	}
	// Train the baseline on what was not an alert.
	h.n++
	a := 1 / min(h.n, 50)
	if !floodAlert {
		h.inPackets += (float64(hp.inPackets) - h.inPackets) * a
		h.heavy += (float64(hp.heavyN) - h.heavy) * a
	}
	if !bytesAlert {
		h.maxBytes += (float64(maxBytes) - h.maxBytes) * a
	}
	if !ready || e.learning {
		for port := range hp.used {
			h.ports.add(port)
		}
	}
}

// relay reports whether a host forwards others' connections on port (a NAT
// gateway or proxy seen without pkt-srcaddr): hosts of ours connected to it
// on that port about as often (flows), or with about as many bytes, as it
// connected out.
func (e *Engine) relay(hp *hostPane, port uint16, flows, bytes uint64) bool {
	if e.hosts[hp.id].middlebox {
		return true
	}
	in := hp.latIn[port]
	if in == nil {
		return false
	}
	if flows > 0 {
		return in.flows*2 >= flows
	}
	return in.bytes*2 >= bytes
}

// floodActor names a flood's sources: the network (at most a /24, or /48
// for IPv6) holding most heavy sources when one holds at least half of
// them, else the heaviest source.
func floodActor(heavy []heavySrc) (addrKey, netip.Prefix) {
	if len(heavy) == 0 {
		return addrKey{}, netip.Prefix{}
	}
	groups := map[addrKey][]addrKey{}
	var best addrKey
	for _, h := range heavy {
		bits := 48
		if h.key.is4() {
			bits = 96 + 24
		}
		g := maskKey(h.key, bits)
		groups[g] = append(groups[g], h.key)
		if len(groups[g]) > len(groups[best]) || (len(groups[g]) == len(groups[best]) && cmpKey(g, best) < 0) {
			best = g
		}
	}
	if members := groups[best]; len(heavy) > 1 && 2*len(members) >= len(heavy) {
		pf := commonPrefix(members)
		if pf.Addr().Is4() && pf.Bits() > 24 {
			pf, _ = pf.Addr().Prefix(24)
		} else if !pf.Addr().Is4() && pf.Bits() > 48 {
			pf, _ = pf.Addr().Prefix(48)
		}
		return keyOf(pf.Addr()), pf
	}
	top := heavy[0]
	for _, h := range heavy[1:] {
		if h.packets > top.packets || (h.packets == top.packets && cmpKey(h.key, top.key) < 0) {
			top = h
		}
	}
	return top.key, netip.Prefix{}
}

// forwards reports whether host id of ours is a middlebox or passed
// connections on port out of our networks in window p.
func (e *Engine) forwards(p *pane, id uint32, port uint16) bool {
	if e.hosts[id].middlebox {
		return true
	}
	tp := p.hosts[id]
	if tp == nil || tp.latIn[port] == nil {
		return false
	}
	op := tp.out[uint32(port)]
	return op != nil && op.flows*2 >= tp.latIn[port].flows
}

func dosKind(r *remote) string {
	switch {
	case r.proto == 6:
		return "Tcp"
	case r.proto == 17 && r.port == 53:
		return "Dns"
	case r.proto == 17 && isService(r.port) && r.port < 1024:
		return "UdpOnTcpPorts"
	case r.proto == 17:
		return "Udp"
	}
	return "UnusualProtocol"
}

func (e *Engine) emitPend(k pendKey, a *pendAgg) {
	dir := finding.Outbound
	if a.inbound {
		dir = finding.Inbound
	}
	switch k.t {
	case typThreat:
		e.upsert(spec{typ: TypeMaliciousCaller, sev: finding.Medium, actor: k.actor, dir: dir, target: k.target,
			count: int64(a.count), first: a.first, last: a.last, samples: a.samples,
			ev:   map[string]int64{"records": int64(a.count), "accepted": int64(a.accepted), "rejected": int64(a.rejected), "bytes": int64(a.bytes)},
			rule: "any record between one of our hosts and an address on a threat list"})
	case typUnexpected:
		e.upsert(spec{typ: TypeUnexpected, sev: finding.Medium, actor: k.actor, dir: finding.Inbound, target: k.target,
			idTarget: fmt.Sprintf("%s:%d", k.target.addr(), k.port), ports: []uint16{k.port},
			count: int64(a.count), first: a.first, last: a.last, samples: a.samples,
			ev:   map[string]int64{"accepted": int64(a.accepted), "bytes": int64(a.bytes)},
			rule: "an accepted inbound connection to a port of expected_sources from a source outside its list and outside the home networks"})
	}
}
