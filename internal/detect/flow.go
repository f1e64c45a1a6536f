package detect

import (
	"net/netip"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// kind is what a record is, once its direction is known.
type kind uint8

const (
	kindSkip         kind = iota
	kindInbound           // an outside host started it, towards one of ours
	kindInboundResp       // an outside host answering a connection one of ours started
	kindOutbound          // one of ours started it, towards an outside host
	kindOutboundResp      // one of ours answering an outside host
	kindLateral           // one of ours started it, towards another of ours
	kindLateralResp       // one of ours answering another of ours
)

// flow bits
const (
	bitSrcAllow  = 1 << iota // source on the allow list
	bitDstAllow              // destination on the allow list
	bitSrcThreat             // source on a threat list
	bitDstThreat             // destination on a threat list
	bitProbe                 // a failed or payload-less attempt
	bitRelayed               // logged on a middlebox: pkt-srcaddr/pkt-dstaddr differ
	bitGuessed               // neither side is known to be ours; the destination was assumed
	bitHopDst                // relayed, and hop is the interface's own dstaddr (a middlebox forwarding out)
	bitSYN                   // tcp-flags show the sender started the connection
)

// flow is one record reduced to what the detectors need. Src is always the
// record's sender and Dst its receiver; Kind says which side is ours and
// who started the conversation.
type flow struct {
	src, dst       addrKey
	hop            addrKey // relayed flows: the middlebox's own address
	packets, bytes uint64
	start, end     uint32 // Unix seconds
	line           int32
	raw, rawLen    uint32 // the record's text in chunk.raw
	sport, dport   uint16
	iface          uint16 // index+1 in chunk.strs of the interface-id
	bits           uint16
	proto          uint8
	action         flowlog.Action
	kind           kind
}

// chunk is one batch's flows, extracted on a scanner worker and applied to
// the engine's state in input order.
type chunk struct {
	source string
	flows  []flow
	raw    []byte
	strs   []string
	// records without traffic (NODATA, SKIPDATA), without addresses or
	// times, or of a format without addresses
	noData, skipData, unusable int64
}

func (c *chunk) line(f *flow) []byte { return c.raw[f.raw : f.raw+f.rawLen] }

// classifier holds what extraction needs to know about addresses.
type classifier struct {
	home, allow, threat *prefixSet
}

// servicePorts marks ports that servers listen on: below 1024, and the
// usual registered service ports above it. A record from a service port to
// a port that is not one is a response.
var servicePorts = func() (s [1024]uint64) {
	for p := 1; p < 1024; p++ {
		s[p>>6] |= 1 << (p & 63)
	}
	for _, p := range []int{1080, 1194, 1433, 1521, 1723, 1883, 2049, 2181, 2375, 2376, 2379, 2380, 3000, 3128, 3268,
		3306, 3389, 4369, 5000, 5044, 5060, 5222, 5349, 5432, 5601, 5671, 5672, 5900, 5984, 6379, 6443, 6881, 7000,
		7001, 7474, 8000, 8008, 8080, 8081, 8086, 8088, 8089, 8443, 8500, 8888, 9000, 9042, 9090, 9092, 9100,
		9200, 9300, 9418, 9443, 10250, 11211, 15672, 25565, 27017, 50000} {
		s[p>>6] |= 1 << (p & 63)
	}
	return s
}()

func isService(p uint16) bool { return servicePorts[p>>6]&(1<<(p&63)) != 0 }

const (
	tcpFIN = 1
	tcpSYN = 2
	tcpRST = 4
	tcpACK = 16
)

// columns are the positions of the fields extraction reads (-1: absent).
type columns struct {
	src, dst, sport, dport, proto, packets, bytes, start, end, action, status,
	flags, pktSrc, pktDst, dir, iface int
}

func columnsOf(f *flowlog.Format) columns {
	return columns{
		src: f.Index(flowlog.FieldSrcAddr), dst: f.Index(flowlog.FieldDstAddr),
		sport: f.Index(flowlog.FieldSrcPort), dport: f.Index(flowlog.FieldDstPort),
		proto: f.Index(flowlog.FieldProtocol), packets: f.Index(flowlog.FieldPackets),
		bytes: f.Index(flowlog.FieldBytes), start: f.Index(flowlog.FieldStart), end: f.Index(flowlog.FieldEnd),
		action: f.Index(flowlog.FieldAction), status: f.Index(flowlog.FieldLogStatus),
		flags: f.Index(flowlog.FieldTCPFlags), pktSrc: f.Index(flowlog.FieldPktSrcAddr),
		pktDst: f.Index(flowlog.FieldPktDstAddr), dir: f.Index(flowlog.FieldFlowDirection),
		iface: f.Index(flowlog.FieldInterfaceID),
	}
}

func uints(b *flowlog.Batch, pos int) ([]uint64, []bool) {
	if pos < 0 {
		return nil, nil
	}
	return b.Uints(pos, nil)
}

func addrs(b *flowlog.Batch, pos int) []netip.Addr {
	if pos < 0 {
		return nil
	}
	return b.Addrs(pos, nil)
}

// extract reduces batch b to flows. It is safe to call from several
// goroutines at once (the classifier is read-only); c is reused.
func (cl *classifier) extract(b *flowlog.Batch, c *chunk) {
	c.source = b.Source
	c.flows = c.flows[:0]
	c.raw = c.raw[:0]
	c.strs = c.strs[:0]
	c.noData, c.skipData, c.unusable = 0, 0, 0
	if b.N == 0 {
		return
	}
	col := columnsOf(b.Format)
	if col.src < 0 || col.dst < 0 || (col.start < 0 && col.end < 0) {
		c.unusable += int64(b.N)
		return
	}
	var statuses []flowlog.LogStatus
	if col.status >= 0 {
		statuses = b.LogStatuses(col.status, nil)
	}
	src, dst := b.Addrs(col.src, nil), b.Addrs(col.dst, nil)
	pktSrc, pktDst := addrs(b, col.pktSrc), addrs(b, col.pktDst)
	sport, sportOK := uints(b, col.sport)
	dport, dportOK := uints(b, col.dport)
	proto, protoOK := uints(b, col.proto)
	packets, packetsOK := uints(b, col.packets)
	bytes, bytesOK := uints(b, col.bytes)
	start, startOK := uints(b, col.start)
	end, endOK := uints(b, col.end)
	flags, flagsOK := uints(b, col.flags)
	var actions []flowlog.Action
	if col.action >= 0 {
		actions = b.Actions(col.action, nil)
	}
	var ifaces map[string]uint16
	text := b.Text()
	for i := 0; i < b.N; i++ {
		if b.Bad(i) {
			continue
		}
		if statuses != nil {
			switch statuses[i] {
			case flowlog.LogStatusNoData:
				c.noData++
				continue
			case flowlog.LogStatusSkipData:
				c.skipData++
				continue
			}
		}
		s, d := src[i], dst[i]
		if !s.IsValid() || !d.IsValid() {
			c.unusable++
			continue
		}
		var f flow
		if pktSrc != nil && pktSrc[i].IsValid() && pktSrc[i] != s {
			f.hop = keyOf(s)
			s = pktSrc[i]
			f.bits |= bitRelayed
		}
		if pktDst != nil && pktDst[i].IsValid() && pktDst[i] != d {
			f.hop = keyOf(d)
			d = pktDst[i]
			f.bits |= bitRelayed | bitHopDst
		}
		switch {
		case startOK != nil && startOK[i]:
			f.start = uint32(start[i])
			f.end = f.start
			if endOK != nil && endOK[i] && end[i] >= start[i] {
				f.end = uint32(end[i])
			}
		case endOK != nil && endOK[i]:
			f.start, f.end = uint32(end[i]), uint32(end[i])
		default:
			c.unusable++
			continue
		}
		f.src, f.dst = keyOf(s), keyOf(d)
		if sportOK != nil && sportOK[i] {
			f.sport = uint16(sport[i])
		}
		if dportOK != nil && dportOK[i] {
			f.dport = uint16(dport[i])
		}
		if protoOK != nil && protoOK[i] {
			f.proto = uint8(proto[i])
		}
		if packetsOK != nil && packetsOK[i] {
			f.packets = packets[i]
		}
		if bytesOK != nil && bytesOK[i] {
			f.bytes = bytes[i]
		}
		if actions != nil {
			f.action = actions[i]
		}
		var tflags uint8
		hasFlags := flagsOK != nil && flagsOK[i]
		if hasFlags {
			tflags = uint8(flags[i])
		}
		var ingress, egress bool
		if col.dir >= 0 && f.bits&bitRelayed == 0 {
			if v, ok := b.String(i, col.dir); ok {
				ingress = string(v) == "ingress"
				egress = string(v) == "egress"
			}
		}
		cl.classify(&f, s, d, tflags, hasFlags, ingress, egress)
		if f.kind == kindSkip {
			continue
		}
		if col.iface >= 0 {
			if v, ok := b.String(i, col.iface); ok {
				if ifaces == nil {
					ifaces = map[string]uint16{}
				}
				id, ok := ifaces[string(v)]
				if !ok && len(c.strs) < 65535 {
					c.strs = append(c.strs, string(v))
					id = uint16(len(c.strs))
					ifaces[c.strs[id-1]] = id
				}
				f.iface = id
			}
		}
		f.line = int32(b.Line(i))
		if text {
			raw := b.RawLine(i)
			f.raw, f.rawLen = uint32(len(c.raw)), uint32(len(raw))
			c.raw = append(c.raw, raw...)
		}
		c.flows = append(c.flows, f)
	}
}

// IsResponse reports whether a record's sender is answering a conversation
// its receiver started: tcp-flags when they say (SYN without ACK: the sender
// started it; any ACK without that: the receiver did), else ports (a record
// from a service port to a port that is not one is a response). syn reports
// that the flags showed the opening SYN.
func IsResponse(proto, tflags uint8, hasFlags bool, sport, dport uint16) (resp, syn bool) {
	switch {
	case proto == 6 && hasFlags && tflags&(tcpSYN|tcpACK) == tcpSYN:
		return false, true
	case proto == 6 && hasFlags && tflags&tcpACK != 0:
		return true, false
	}
	return isService(sport) && !isService(dport), false
}

// classify decides which side of f is ours, who started the conversation,
// and whether it is a probe.
func (cl *classifier) classify(f *flow, s, d netip.Addr, tflags uint8, hasFlags, ingress, egress bool) {
	srcOurs := cl.home.contains(s, f.src) || egress
	dstOurs := cl.home.contains(d, f.dst) || ingress
	if !srcOurs && !dstOurs {
		// Neither address is in the home networks and the format has no
		// flow-direction: the logging interface is most often the
		// receiver.
		dstOurs = true
		f.bits |= bitGuessed
	}
	// Who started it: tcp-flags when they say (SYN without ACK: the
	// sender; SYN-ACK: the receiver), else ports (a record from a service
	// port to a non-service port is a response).
	resp, syn := IsResponse(f.proto, tflags, hasFlags, f.sport, f.dport)
	if syn {
		f.bits |= bitSYN
	}
	switch {
	case srcOurs && dstOurs:
		f.kind = kindLateral
		if resp {
			f.kind = kindLateralResp
		}
	case dstOurs:
		f.kind = kindInbound
		if resp {
			f.kind = kindInboundResp
		}
	default:
		f.kind = kindOutbound
		if resp {
			f.kind = kindOutboundResp
		}
	}
	if cl.allow.contains(s, f.src) {
		f.bits |= bitSrcAllow
	}
	if cl.allow.contains(d, f.dst) {
		f.bits |= bitDstAllow
	}
	if cl.threat.contains(s, f.src) {
		f.bits |= bitSrcThreat
	}
	if cl.threat.contains(d, f.dst) {
		f.bits |= bitDstThreat
	}
	// A probe: rejected, or a TCP attempt of at most two packets without
	// payload (a SYN, or SYN and RST as a half-open scan sends).
	if f.action == flowlog.ActionReject {
		f.bits |= bitProbe
	} else if f.proto == 6 && f.packets > 0 && f.packets <= 2 {
		hdr := uint64(80)
		if !f.src.is4() {
			hdr = 100
		}
		if f.bytes <= f.packets*hdr {
			f.bits |= bitProbe
		}
	}
}
