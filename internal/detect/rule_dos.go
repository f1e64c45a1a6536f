package detect

import (
	"fmt"

	"github.com/flowguard/flowguard/internal/finding"
)

// denialOfService raises Backdoor:EC2/DenialOfService.* (high) when one of
// our hosts sends at least min_packets small packets (averaging at most
// max_avg_packet_bytes) to one outside host in a window.
type denialOfService struct{ set DenialOfServiceSettings }

func init() {
	register("denial_of_service", orderHost, func(e *Engine) detector {
		if !e.set.DenialOfService.Enabled {
			return nil
		}
		return &denialOfService{e.set.DenialOfService}
	})
}

func (d *denialOfService) judge(j *judgement) {
	for i := range j.hosts {
		r := &j.hosts[i]
		for rk, rm := range r.hp.remotes {
			if rm.pktsOut < uint64(d.set.MinPackets) || rm.bytesOut > rm.pktsOut*uint64(d.set.MaxAvgPacketBytes) ||
				j.e.relay(r.hp, rm.port, 0, rm.bytesOut) {
				continue
			}
			j.emit(spec{typ: TypeDoSPrefix + dosKind(rm), sev: finding.High, actor: r.h.addr, dir: finding.Outbound,
				target: rk, ports: []uint16{rm.port}, count: 1, first: rm.first, last: rm.last, samples: rm.samples,
				ev:   evidence{finding.EvPackets: int64(rm.pktsOut), finding.EvBytes: int64(rm.bytesOut), finding.EvPacketsIn: int64(rm.pktsIn)},
				rule: fmt.Sprintf("at least min_packets small packets (average at most max_avg_packet_bytes) from one of our hosts to one remote host in a %s window", j.set.Window),
				thr:  map[string]any{"min_packets": d.set.MinPackets, "max_avg_packet_bytes": d.set.MaxAvgPacketBytes}})
		}
	}
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
