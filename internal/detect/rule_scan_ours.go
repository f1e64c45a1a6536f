package detect

import (
	"fmt"

	"github.com/flowguard/flowguard/internal/finding"
)

// scanByOurs raises Recon:EC2/Portscan with one of our hosts as the actor:
// sweeps of one port over min_hosts_outbound outside hosts (min_hosts of
// ours, lateral) and vertical scans of min_ports ports of one host, within
// one window. NAT gateways and proxies, which pass others' connections on,
// are never named.
type scanByOurs struct{ set PortscanSettings }

func init() {
	register("portscan_ours", orderHost, func(e *Engine) detector {
		if !e.set.Portscan.Enabled {
			return nil
		}
		return &scanByOurs{e.set.Portscan}
	})
}

func (d *scanByOurs) judge(j *judgement) {
	set := d.set
	for i := range j.hosts {
		r := &j.hosts[i]
		hp, h := r.hp, r.h
		for key, op := range hp.out {
			lateral := key>>16 != 0
			port := uint16(key)
			thr, thrName, dir := set.MinHostsOutbound, "min_hosts_outbound", finding.Outbound
			if lateral {
				thr, thrName, dir = set.MinHosts, "min_hosts", finding.Lateral
			}
			n := op.hosts.count()
			if n < thr || j.e.relay(hp, port, op.flows, 0) {
				continue
			}
			if !lateral && hp.retPorts.has(port) && 2*hp.retRemotes.count() >= n {
				// Most of the hosts answered from that port, and a
				// stateless network ACL rejected the answers: the
				// attempts failed on our side. That is the Policy
				// finding, not a scan (a scan's targets mostly do not
				// answer).
				continue
			}
			j.emit(spec{typ: TypePortscan, sev: finding.Medium, actor: h.addr, dir: dir,
				idTarget: fmt.Sprintf("%s-sweep:%d", dir, port), ports: []uint16{port}, count: int64(op.probes),
				first: op.first, last: op.last, samples: op.samples,
				ev: evidence{finding.EvDistinctHosts: int64(n), finding.EvProbes: int64(op.probes), finding.EvFlows: int64(op.flows)},
				rule: fmt.Sprintf("failed or payload-less attempts by one of our hosts on one port of at least %s distinct hosts in one %s window",
					thrName, j.set.Window),
				thr: map[string]any{"min_hosts": set.MinHosts, "min_hosts_outbound": set.MinHostsOutbound}})
		}
		if h.middlebox {
			continue
		}
		for tk, ports := range hp.probed {
			if ports.len() < set.MinPorts {
				continue
			}
			dir := finding.Outbound
			if j.e.cl.home.contains(tk.addr(), tk) {
				dir = finding.Lateral
			}
			j.emit(spec{typ: TypePortscan, sev: finding.Medium, actor: h.addr, dir: dir, target: tk,
				ports: lowestPorts(32, ports), count: int64(ports.len()), first: hp.first, last: hp.last, samples: hp.samples,
				ev:   evidence{finding.EvDistinctPorts: int64(ports.len())},
				rule: fmt.Sprintf("failed or payload-less attempts by one of our hosts on at least min_ports distinct ports of one host in one %s window", j.set.Window),
				thr:  map[string]any{"min_ports": set.MinPorts}})
		}
	}
}
