package synth

import (
	"net/netip"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// IANA protocol numbers.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// traffic-path values (egress records only).
const (
	pathSameVPC  = 1 // through another resource in the same VPC (NAT gateway, ALB, peer instance)
	pathEndpoint = 7 // through a gateway VPC endpoint
	pathIGW      = 8 // through an internet gateway
)

// phase is where a TCP connection is in its life during one window; it
// decides the tcp-flags of the records: AWS records only FIN, SYN, RST and
// SYN-ACK, OR-ed over the window.
type phase uint8

const (
	phaseShort phase = iota // opened and closed in the window: 3 / 19
	phaseOpen               // opened, still open at the end: 2 / 18
	phaseMid                // established, no flags: 0 / 0
	phaseClose              // closed in the window: 1 / 1
)

var (
	clientFlags = [...]uint8{3, 2, 0, 1}
	serverFlags = [...]uint8{19, 18, 0, 1}
)

// vol is the packets and bytes of one direction of a flow.
type vol struct{ pkts, bytes uint64 }

// skew returns an int in [lo, hi], most often near lo.
func (g *Generator) skew(lo, hi int) int {
	if hi <= lo {
		return lo
	}
	u := g.r.Float64()
	return lo + int(float64(hi-lo+1)*u*u*u)
}

// volume returns a flow of pkts in [lo, hi] (skewed low) of avgLo..avgHi
// bytes each.
func (g *Generator) volume(lo, hi, avgLo, avgHi int) vol {
	p := g.skew(lo, hi)
	avg := avgLo
	if avgHi > avgLo {
		avg += g.r.IntN(avgHi - avgLo + 1)
	}
	return vol{uint64(p), uint64(p * avg)}
}

// span returns start and end times of a flow inside the window starting at
// ws: short flows last a few seconds, long ones up to the window end.
func (g *Generator) span(ws int64, long bool) (int64, int64) {
	s := ws + int64(g.r.IntN(int(windowSec)-2))
	rest := ws + windowSec - s
	if long {
		return s, s + rest/2 + int64(g.r.IntN(int(rest-rest/2)+1))
	}
	return s, s + int64(g.skew(0, int(min(rest, 12))))
}

// add appends a record logged on ifc to the window buffer.
func (g *Generator) add(ifc *Interface, dir Direction, src, dst netip.Addr, sport, dport uint16, proto uint8, v vol, start, end int64, act flowlog.Action, flags uint8, path uint8) *Record {
	if dir != Egress {
		path = 0
	}
	if proto != protoTCP {
		flags = 0
	}
	g.buf = append(g.buf, Record{
		Iface: ifc, SrcAddr: src, DstAddr: dst, PktSrc: src, PktDst: dst,
		SrcPort: sport, DstPort: dport, Protocol: proto, TCPFlags: flags,
		Packets: v.pkts, Bytes: v.bytes, Start: start, End: end,
		Action: act, LogStatus: flowlog.LogStatusOK, Direction: dir, TrafficPath: path,
	})
	return &g.buf[len(g.buf)-1]
}

// conn describes one TCP (or UDP) conversation for the record helpers.
type conn struct {
	client, server netip.Addr
	cport, sport   uint16
	proto          uint8
	c2s, s2c       vol
	start, end     int64
	ph             phase
}

// serverSide logs conn on the server's interface: request in, response out.
// path is the traffic-path of the response. It returns the number of records.
func (g *Generator) serverSide(ifc *Interface, c *conn, path uint8) int {
	s := c.start + int64(g.r.IntN(2))
	e := max(c.end, s)
	g.add(ifc, Ingress, c.client, c.server, c.cport, c.sport, c.proto, c.c2s, s, e, flowlog.ActionAccept, clientFlags[c.ph], 0)
	if c.s2c.pkts == 0 {
		return 1
	}
	g.add(ifc, Egress, c.server, c.client, c.sport, c.cport, c.proto, c.s2c, s, e, flowlog.ActionAccept, serverFlags[c.ph], path)
	return 2
}

// clientSide logs conn on the client's interface: request out, response in.
func (g *Generator) clientSide(ifc *Interface, c *conn, path uint8) int {
	g.add(ifc, Egress, c.client, c.server, c.cport, c.sport, c.proto, c.c2s, c.start, c.end, flowlog.ActionAccept, clientFlags[c.ph], path)
	if c.s2c.pkts == 0 {
		return 1
	}
	g.add(ifc, Ingress, c.server, c.client, c.sport, c.cport, c.proto, c.s2c, c.start, c.end, flowlog.ActionAccept, serverFlags[c.ph], 0)
	return 2
}

// viaNAT logs a conversation from a private instance to an internet host
// through the NAT gateway, as AWS's example shows it: on the instance's
// interface the far side is the internet host; on the NAT gateway's
// interface srcaddr/dstaddr are the hops (instance → NAT, NAT → host and
// back) while pkt-srcaddr/pkt-dstaddr keep the original addresses.
func (g *Generator) viaNAT(inst *Interface, c *conn, natPort uint16) int {
	n := g.clientSide(inst, c, pathSameVPC)
	nat := g.topo.nat
	na := nat.Addr
	s := c.start + int64(g.r.IntN(2))
	e := max(c.end, s)
	r := g.add(nat, Ingress, c.client, na, c.cport, c.sport, c.proto, c.c2s, s, e, flowlog.ActionAccept, clientFlags[c.ph], 0)
	r.PktDst = c.server
	g.add(nat, Egress, na, c.server, natPort, c.sport, c.proto, c.c2s, s, e, flowlog.ActionAccept, clientFlags[c.ph], pathIGW)
	n += 2
	if c.s2c.pkts > 0 {
		g.add(nat, Ingress, c.server, na, c.sport, natPort, c.proto, c.s2c, s, e, flowlog.ActionAccept, serverFlags[c.ph], 0)
		r = g.add(nat, Egress, na, c.client, c.sport, c.cport, c.proto, c.s2c, s, e, flowlog.ActionAccept, serverFlags[c.ph], pathSameVPC)
		r.PktSrc = c.server
		n += 2
	}
	return n
}

// cont is a connection that continues into the next window.
type cont struct {
	srv  *Interface
	c    conn
	path uint8
}

func (g *Generator) continueConn(k *cont, ws int64) {
	c := k.c
	c.ph = phaseClose
	c.start, c.end = g.span(ws, false)
	c.start = ws + int64(g.r.IntN(3))
	c.c2s = g.volume(2, 20, 60, 300)
	c.s2c = g.volume(2, 60, 600, 1400)
	g.serverSide(k.srv, &c, k.path)
}

type kind uint8

const (
	kindWeb kind = iota
	kindHealth
	kindDB
	kindAppToApp
	kindNAT
	kindDNS
	kindS3
	kindIPv6Out
	kindNoise
	kindAdmin
	kindNACLReturn
	kindEgressReject
	kindPing
	kindNoData
	kindSkipData
	numKinds
)

// Conversation weights (per conversation, so that the share of records is
// roughly: web 30%, health checks 10%, databases 20%, NAT 12%, noise 12% …).
var kindWeight = [numKinds]int{
	kindWeb:          500,
	kindHealth:       250,
	kindDB:           500,
	kindAppToApp:     100,
	kindNAT:          200,
	kindDNS:          35,
	kindS3:           150,
	kindIPv6Out:      100,
	kindNoise:        1100,
	kindAdmin:        60,
	kindNACLReturn:   50,
	kindEgressReject: 100,
	kindPing:         20,
	kindNoData:       150,
	kindSkipData:     15,
}

var kindCum = func() (c [numKinds]int) {
	t := 0
	for i, w := range kindWeight {
		t += w
		c[i] = t
	}
	return c
}()

// background adds one background conversation in the window starting at
// ws and returns how many records it produced.
func (g *Generator) background(ws int64) int {
	x := g.r.IntN(kindCum[numKinds-1])
	k := kind(0)
	for x >= kindCum[k] {
		k++
	}
	t := g.topo
	switch k {
	case kindWeb:
		return g.webRequest(ws, g.pickClient())
	case kindHealth:
		alb := t.alb[g.r.IntN(2)]
		tgt := t.apps[g.r.IntN(len(t.apps))]
		c := conn{client: alb.Addr, server: tgt.Addr, cport: ephemeralLinux(g.r), sport: 8080, proto: protoTCP,
			c2s: g.volume(5, 7, 60, 90), s2c: g.volume(4, 6, 90, 160)}
		c.start, c.end = g.span(ws, false)
		return g.clientSide(alb, &c, pathSameVPC) + g.serverSide(tgt, &c, pathSameVPC)
	case kindDB:
		var app, db *Interface
		c := conn{proto: protoTCP, c2s: g.volume(2, 150, 80, 320), s2c: g.volume(2, 400, 200, 1400)}
		if len(t.pools) > 0 && g.r.IntN(10) != 0 {
			p := t.pools[g.r.IntN(len(t.pools))]
			app, db = p.app, p.db
			c.cport, c.ph = p.sport, phaseMid
			c.start, c.end = g.span(ws, true)
		} else {
			app, db = t.apps[g.r.IntN(len(t.apps))], t.dbs[g.r.IntN(len(t.dbs))]
			c.cport, c.ph = ephemeralLinux(g.r), phaseShort
			c.start, c.end = g.span(ws, false)
		}
		c.client, c.server, c.sport = app.Addr, db.Addr, dbPort(db)
		return g.clientSide(app, &c, pathSameVPC) + g.serverSide(db, &c, pathSameVPC)
	case kindAppToApp:
		a, b := t.apps[g.r.IntN(len(t.apps))], t.apps[g.r.IntN(len(t.apps))]
		if a == b {
			b = t.apps[(g.r.IntN(len(t.apps)-1)+1+indexOf(t.apps, a))%len(t.apps)]
		}
		c := conn{client: a.Addr, server: b.Addr, cport: ephemeralLinux(g.r), sport: 8080, proto: protoTCP,
			c2s: g.volume(4, 40, 100, 600), s2c: g.volume(4, 80, 300, 1400)}
		c.start, c.end = g.span(ws, false)
		return g.clientSide(a, &c, pathSameVPC) + g.serverSide(b, &c, pathSameVPC)
	case kindNAT:
		inst := g.pickPrivate()
		dport := uint16(443)
		if g.r.IntN(8) == 0 {
			dport = 80
		}
		c := conn{client: inst.Addr, server: t.externals[g.skew(0, len(t.externals)-1)], cport: ephemeralLinux(g.r),
			sport: dport, proto: protoTCP, c2s: g.volume(5, 60, 80, 500), s2c: g.volume(5, 300, 600, 1400)}
		c.start, c.end = g.span(ws, false)
		return g.viaNAT(inst, &c, uint16(1024+g.r.IntN(64511)))
	case kindDNS:
		inst := g.pickPrivate()
		c := conn{client: inst.Addr, server: t.externals[g.r.IntN(4)], cport: ephemeralLinux(g.r), sport: 53,
			proto: protoUDP, c2s: g.volume(1, 4, 60, 80), s2c: g.volume(1, 4, 80, 300)}
		c.start, c.end = g.span(ws, false)
		return g.viaNAT(inst, &c, uint16(1024+g.r.IntN(64511)))
	case kindS3:
		inst := g.pickPrivate()
		s3 := hostIn(s3Net, 1+g.r.Uint32N(1<<17-2))
		c := conn{client: inst.Addr, server: s3, cport: ephemeralLinux(g.r), sport: 443, proto: protoTCP}
		if g.r.IntN(2) == 0 { // upload
			c.c2s, c.s2c = g.volume(20, 20000, 1300, 1460), g.volume(10, 6000, 52, 60)
		} else {
			c.c2s, c.s2c = g.volume(10, 6000, 52, 80), g.volume(20, 20000, 1300, 1460)
		}
		c.start, c.end = g.span(ws, g.r.IntN(4) == 0)
		n := len(g.buf)
		g.clientSide(inst, &c, pathEndpoint)
		g.buf[n].PktDstService = "S3"
		g.buf[n+1].PktSrcService = "S3"
		return 2
	case kindIPv6Out:
		inst := g.pickPrivate()
		c := conn{client: inst.Addr6, server: random6(g.r), cport: ephemeralLinux(g.r),
			sport: 443, proto: protoTCP, c2s: g.volume(5, 40, 80, 400), s2c: g.volume(5, 200, 600, 1400)}
		c.start, c.end = g.span(ws, false)
		return g.clientSide(inst, &c, pathIGW)
	case kindNoise:
		return g.noise(ws)
	case kindAdmin:
		admin := hostIn(officeNet, 10+g.r.Uint32N(30))
		b := t.bastion
		ph := []phase{phaseShort, phaseOpen, phaseMid, phaseMid, phaseClose}[g.r.IntN(5)]
		c := conn{client: admin, server: b.Addr, cport: ephemeral(g.r), sport: 22, proto: protoTCP,
			c2s: g.volume(10, 600, 60, 180), s2c: g.volume(10, 800, 80, 400), ph: ph}
		c.start, c.end = g.span(ws, ph != phaseShort)
		n := g.serverSide(b, &c, pathIGW)
		if g.r.IntN(2) == 0 {
			h := t.private[g.r.IntN(len(t.private))]
			c2 := c
			c2.client, c2.server, c2.cport = b.Addr, h.Addr, ephemeralLinux(g.r)
			n += g.clientSide(b, &c2, pathSameVPC) + g.serverSide(h, &c2, pathSameVPC)
		}
		return n
	case kindNACLReturn:
		// Stateless network ACL: the response to an allowed outbound call
		// is rejected; srcaddr is the remote server, srcport 443.
		inst := t.public[3+g.r.IntN(len(t.public)-3)] // the public web servers
		ext := t.externals[g.r.IntN(len(t.externals))]
		cp := ephemeralLinux(g.r)
		s, e := g.span(ws, false)
		g.add(inst, Egress, inst.Addr, ext, cp, 443, protoTCP, g.volume(1, 3, 60, 60), s, e, flowlog.ActionAccept, 2, pathIGW)
		g.add(inst, Ingress, ext, inst.Addr, 443, cp, protoTCP, g.volume(1, 3, 60, 60), s, e, flowlog.ActionReject, 18, 0)
		return 2
	case kindEgressReject:
		// Outbound SMTP blocked by the security group: srcaddr is ours.
		inst := g.pickPrivate()
		s, e := g.span(ws, false)
		g.add(inst, Egress, inst.Addr, t.externals[g.r.IntN(len(t.externals))], ephemeralLinux(g.r), 25, protoTCP,
			g.volume(1, 3, 60, 60), s, e, flowlog.ActionReject, 2, pathSameVPC)
		return 1
	case kindPing:
		admin := hostIn(officeNet, 10+g.r.Uint32N(30))
		s, e := g.span(ws, false)
		v := g.volume(1, 10, 84, 84)
		g.add(t.bastion, Ingress, admin, t.bastion.Addr, 0, 0, protoICMP, v, s, e, flowlog.ActionAccept, 0, 0)
		g.add(t.bastion, Egress, t.bastion.Addr, admin, 0, 0, protoICMP, v, s, e, flowlog.ActionAccept, 0, pathIGW)
		return 2
	case kindNoData, kindSkipData:
		st := flowlog.LogStatusNoData
		if k == kindSkipData {
			st = flowlog.LogStatusSkipData
		}
		s := ws + int64(g.r.IntN(4))
		g.buf = append(g.buf, Record{Iface: t.ifaces[g.r.IntN(len(t.ifaces))], Start: s, End: s + 55 + int64(g.r.IntN(6)), LogStatus: st})
		return 1
	}
	return 1
}

func indexOf(s []*Interface, x *Interface) int {
	for i, y := range s {
		if y == x {
			return i
		}
	}
	return 0
}

// pickClient returns a web client, popular ones more often.
func (g *Generator) pickClient() netip.Addr {
	c := g.topo.webClients
	return c[g.skew(0, len(c)-1)]
}

func (g *Generator) pickPrivate() *Interface {
	p := g.topo.private
	return p[g.r.IntN(len(p))]
}

// webRequest logs one client connection to the load balancer and the
// request it forwards to a target.
func (g *Generator) webRequest(ws int64, client netip.Addr) int {
	t := g.topo
	alb := t.alb[g.r.IntN(2)]
	srv := alb.Addr
	if client.Is6() {
		srv = alb.Addr6
	}
	c := conn{client: client, server: srv, cport: ephemeral(g.r), sport: 443, proto: protoTCP,
		c2s: g.volume(6, 40, 90, 400), s2c: g.volume(5, 200, 700, 1400)}
	long := g.r.IntN(7) == 0
	if long {
		c.ph = phaseOpen
	}
	c.start, c.end = g.span(ws, long)
	n := g.serverSide(alb, &c, pathIGW)
	if long {
		g.next = append(g.next, cont{srv: alb, c: c, path: pathIGW})
	}
	tgt := t.apps[g.r.IntN(len(t.apps))]
	b := conn{client: alb.Addr, server: tgt.Addr, cport: ephemeralLinux(g.r), sport: 8080, proto: protoTCP,
		c2s: g.volume(4, 30, 120, 500), s2c: g.volume(4, 200, 700, 1400)}
	b.start = c.start + int64(g.r.IntN(2))
	b.end = max(b.start, c.end)
	return n + g.clientSide(alb, &b, pathSameVPC) + g.serverSide(tgt, &b, pathSameVPC)
}

// commonPorts are the ports the internet's background scanners probe most.
var commonPorts = []uint16{22, 23, 80, 443, 445, 3389, 8080, 8443, 5900, 3306, 1433, 6379, 9200, 25, 21, 2222, 8888, 5432, 27017, 7547, 81, 8000, 139, 135, 1723, 111, 995, 993, 110, 143}

var udpPorts = []uint16{53, 123, 161, 1900, 5060, 11211, 137, 500, 69, 19}

// noise adds one probe from the internet to a public interface: mostly a
// single rejected SYN from an address seen once.
func (g *Generator) noise(ws int64) int {
	t := g.topo
	var dst *Interface
	if x := g.r.IntN(len(t.public) + 2); x < 2 {
		dst = t.alb[x]
	} else {
		dst = t.public[x-2]
	}
	var src, daddr netip.Addr
	if g.r.IntN(7) == 0 {
		src, daddr = random6(g.r), dst.Addr6
	} else {
		daddr = dst.Addr
		if g.r.IntN(10) == 0 {
			src = t.noisePool[g.r.IntN(len(t.noisePool))]
		} else {
			src = randomPublic4(g.r)
		}
	}
	s, e := g.span(ws, false)
	sport := ephemeral(g.r)
	switch x := g.r.IntN(100); {
	case x < 3: // ping sweep
		proto := uint8(protoICMP)
		if src.Is6() {
			proto = protoICMPv6
		}
		act := flowlog.ActionReject
		if dst.accepts(src, 0, proto) {
			act = flowlog.ActionAccept
		}
		g.add(dst, Ingress, src, daddr, 0, 0, proto, vol{1, 84}, s, s, act, 0, 0)
		return 1
	case x < 15:
		port := udpPorts[g.r.IntN(len(udpPorts))]
		g.add(dst, Ingress, src, daddr, sport, port, protoUDP, g.volume(1, 2, 40, 120), s, e, flowlog.ActionReject, 0, 0)
		return 1
	}
	var port uint16
	if g.r.IntN(10) < 6 {
		port = commonPorts[g.skew(0, len(commonPorts)-1)]
	} else {
		port = uint16(1 + g.r.IntN(65535))
	}
	syn := uint64(44 + 16*g.r.IntN(2))
	if src.Is6() {
		syn += 20
	}
	if dst.accepts(src, port, protoTCP) {
		g.add(dst, Ingress, src, daddr, sport, port, protoTCP, vol{2, 2*syn - 4}, s, e, flowlog.ActionAccept, 2|4, 0)
		g.add(dst, Egress, daddr, src, port, sport, protoTCP, vol{1, syn}, s, e, flowlog.ActionAccept, 18, pathIGW)
		return 2
	}
	p := uint64(1 + g.skew(0, 1))
	g.add(dst, Ingress, src, daddr, sport, port, protoTCP, vol{p, p * syn}, s, e, flowlog.ActionReject, 2, 0)
	return 1
}
