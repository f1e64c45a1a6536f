package synth

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
)

// The address plan. Internet hosts that matter (administrators, attackers,
// threat-list entries) come from the documentation ranges; volume (web
// clients, background noise, outbound destinations) from random
// public-looking IPv4 addresses outside every special-use range, and
// 2001:db8::/32 for IPv6. The output is text only: nothing is sent.
var (
	vpcV4     = netip.MustParsePrefix("10.0.0.0/16")
	vpcV6     = netip.MustParsePrefix("2600:1f18:abc::/56")
	officeNet = netip.MustParsePrefix("203.0.113.0/24") // administrators; allow-listed
	// attackerNet holds scanners, brute-forcers and the exfiltration
	// destination.
	attackerNet = netip.MustParsePrefix("198.51.100.0/24")
	floodNet    = netip.MustParsePrefix("198.18.0.0/15") // flood sources (RFC 2544 range)
	s3Net       = netip.MustParsePrefix("52.216.0.0/15") // S3 (us-east-1), via the gateway endpoint
	internet6   = netip.MustParsePrefix("2001:db8::/32") // IPv6 internet hosts
	natPrivate  = netip.MustParseAddr("10.0.0.220")
	albPrivate  = [2]netip.Addr{netip.MustParseAddr("10.0.0.100"), netip.MustParseAddr("10.0.1.100")}
	bastionAddr = netip.MustParseAddr("10.0.0.10")
	legacyAddr  = netip.MustParseAddr("10.0.1.10")
	rdpAddr     = netip.MustParseAddr("10.0.1.20")
)

// Role is what an interface is for; it decides its traffic and which
// ports its security groups open.
type Role uint8

// Interface roles.
const (
	RoleALB       Role = iota + 1 // Application Load Balancer node
	RoleNAT                       // NAT gateway
	RoleBastion                   // SSH bastion, port 22 from the office only
	RoleLegacyWeb                 // old public web server: 80, 443 and 22 open to the world
	RoleRDP                       // Windows jump host: 3389 open to the world
	RolePublicWeb                 // public web server: 80 and 443
	RoleApp                       // application server behind the ALB (8080)
	RoleWorker                    // batch worker: outbound only
	RolePostgres                  // database, 5432
	RoleMySQL                     // database, 3306
	RoleRedis                     // cache, 6379
)

var roleNames = [...]string{"", "alb", "nat-gateway", "bastion", "legacy-web", "rdp-jump", "public-web", "app", "worker", "postgres", "mysql", "redis"}

func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return "role" + strconv.Itoa(int(r))
}

// Interface is one network interface of the generated VPC.
type Interface struct {
	ID         string // eni-…
	InstanceID string // i-…; "" for load balancer and NAT gateway interfaces
	SubnetID   string
	VPCID      string
	AZID       string
	Role       Role
	Addr       netip.Addr // primary private IPv4 address
	Addr6      netip.Addr // IPv6 address (dual-stack subnets)
	Public     bool       // reachable from the internet
}

type subnet struct {
	id     string
	az     string
	v4     [3]byte // 10.0.x
	v6     uint16  // fourth group of the /64
	public bool
}

type topology struct {
	vpcID   string
	ifaces  []*Interface
	alb     [2]*Interface
	nat     *Interface
	bastion *Interface
	legacy  *Interface
	rdp     *Interface
	public  []*Interface // instances reachable from the internet (not ALB/NAT)
	apps    []*Interface
	workers []*Interface
	dbs     []*Interface
	private []*Interface // apps, workers, dbs
	threats []netip.Addr

	webClients []netip.Addr // the web's clients, popular first
	externals  []netip.Addr // APIs and mirrors our instances call
	noisePool  []netip.Addr // internet scanners that come back now and then
	pools      []dbConn     // pooled app→database connections
}

// dbConn is a long-lived pooled connection from an app server to a database.
type dbConn struct {
	app, db *Interface
	sport   uint16
}

func hexID(r *rand.Rand, prefix string) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 0, len(prefix)+17)
	b = append(b, prefix...)
	b = append(b, '0')
	v := r.Uint64()
	for range 16 {
		b = append(b, digits[v&15])
		v >>= 4
	}
	return string(b)
}

func newTopology(cfg Config, r *rand.Rand) *topology {
	t := &topology{vpcID: hexID(r, "vpc-")}
	region := cfg.Region
	az := [2]string{azID(region, 1), azID(region, 2)}
	mk := func(cidr3 byte, v6 uint16, azi int, public bool) *subnet {
		return &subnet{id: hexID(r, "subnet-"), az: az[azi], v4: [3]byte{10, 0, cidr3}, v6: v6, public: public}
	}
	pubA, pubB := mk(0, 0x0, 0, true), mk(1, 0x1, 1, true)
	appA, appB := mk(10, 0xa, 0, false), mk(11, 0xb, 1, false)
	dataA, dataB := mk(20, 0x14, 0, false), mk(21, 0x15, 1, false)

	used := map[netip.Addr]bool{}
	addIface := func(sn *subnet, role Role, host byte, instance bool) *Interface {
		if host == 0 {
			for {
				host = byte(4 + r.IntN(247))
				if !used[netip.AddrFrom4([4]byte{sn.v4[0], sn.v4[1], sn.v4[2], host})] {
					break
				}
			}
		}
		a := netip.AddrFrom4([4]byte{sn.v4[0], sn.v4[1], sn.v4[2], host})
		used[a] = true
		var b16 [16]byte
		pfx := vpcV6.Addr().As16()
		copy(b16[:6], pfx[:6])
		b16[6], b16[7] = byte(sn.v6>>8), byte(sn.v6)
		iid := r.Uint64()
		for i := range 8 {
			b16[8+i] = byte(iid >> (56 - 8*i))
		}
		ifc := &Interface{
			ID: hexID(r, "eni-"), SubnetID: sn.id, VPCID: t.vpcID, AZID: sn.az,
			Role: role, Addr: a, Addr6: netip.AddrFrom16(b16), Public: sn.public,
		}
		if instance {
			ifc.InstanceID = hexID(r, "i-")
		}
		t.ifaces = append(t.ifaces, ifc)
		return ifc
	}
	t.alb[0] = addIface(pubA, RoleALB, albPrivate[0].As4()[3], false)
	t.alb[1] = addIface(pubB, RoleALB, albPrivate[1].As4()[3], false)
	t.nat = addIface(pubA, RoleNAT, natPrivate.As4()[3], false)
	t.nat.Addr6 = netip.Addr{} // NAT gateways are IPv4 only
	t.bastion = addIface(pubA, RoleBastion, bastionAddr.As4()[3], true)
	t.legacy = addIface(pubB, RoleLegacyWeb, legacyAddr.As4()[3], true)
	t.rdp = addIface(pubB, RoleRDP, rdpAddr.As4()[3], true)
	t.public = append(t.public, t.bastion, t.legacy, t.rdp)

	n := 20 + r.IntN(31) // instances
	rest := n - 3
	nPub := max(2, n/6)
	nDB := 3 + n/15
	nApp := (rest - nPub - nDB) * 3 / 5
	nWorker := rest - nPub - nDB - nApp
	pubs := [2]*subnet{pubA, pubB}
	apps := [2]*subnet{appA, appB}
	datas := [2]*subnet{dataA, dataB}
	for i := range nPub {
		t.public = append(t.public, addIface(pubs[i%2], RolePublicWeb, 0, true))
	}
	for i := range nApp {
		t.apps = append(t.apps, addIface(apps[i%2], RoleApp, 0, true))
	}
	for i := range nWorker {
		t.workers = append(t.workers, addIface(apps[i%2], RoleWorker, 0, true))
	}
	dbRoles := []Role{RolePostgres, RolePostgres, RoleRedis, RoleMySQL}
	for i := range nDB {
		role := dbRoles[i%len(dbRoles)]
		if i >= len(dbRoles) {
			role = []Role{RolePostgres, RoleRedis, RoleMySQL}[r.IntN(3)]
		}
		t.dbs = append(t.dbs, addIface(datas[i%2], role, 0, true))
	}
	t.private = append(append(append(t.private, t.apps...), t.workers...), t.dbs...)

	// Pooled database connections: each app server keeps a few per database.
	for _, a := range t.apps {
		for _, d := range t.dbs {
			if r.IntN(3) == 0 {
				continue
			}
			for range 1 + r.IntN(3) {
				t.pools = append(t.pools, dbConn{app: a, db: d, sport: ephemeralLinux(r)})
			}
		}
	}

	// The threat list: addresses in 192.0.2.0/24.
	seen := map[byte]bool{}
	for len(t.threats) < 8 {
		h := byte(1 + r.IntN(254))
		if !seen[h] {
			seen[h] = true
			t.threats = append(t.threats, netip.AddrFrom4([4]byte{192, 0, 2, h}))
		}
	}

	nClients := min(max(cfg.Records/40, 500), 250000)
	t.webClients = make([]netip.Addr, nClients)
	for i := range t.webClients {
		if r.IntN(10) == 0 {
			t.webClients[i] = random6(r)
		} else {
			t.webClients[i] = randomPublic4(r)
		}
	}
	t.externals = make([]netip.Addr, 300)
	for i := range t.externals {
		t.externals[i] = randomPublic4(r)
	}
	t.noisePool = make([]netip.Addr, min(max(cfg.Records/1000, 100), 20000))
	for i := range t.noisePool {
		t.noisePool[i] = randomPublic4(r)
	}
	return t
}

func azID(region string, n int) string {
	// use1-az1 for us-east-1: the first letters of the region's parts and
	// its number.
	short := []byte{}
	part := 0
	for i := 0; i < len(region); i++ {
		c := region[i]
		switch {
		case c == '-':
			part++
		case c >= '0' && c <= '9':
			short = append(short, c)
		case i == 0 || region[i-1] == '-':
			if part == 0 {
				short = append(short, c)
				if i+1 < len(region) && region[i+1] != '-' {
					short = append(short, region[i+1])
				}
			} else {
				short = append(short, c)
			}
		}
	}
	return string(short) + "-az" + strconv.Itoa(n)
}

// randomPublic4 returns a random IPv4 address outside private, shared,
// loopback, link-local, multicast, reserved and documentation ranges, and
// outside the ranges this package gives special meaning.
func randomPublic4(r *rand.Rand) netip.Addr {
	for {
		v := r.Uint32()
		a, b, c := byte(v>>24), byte(v>>16), byte(v>>8)
		switch {
		case a == 0 || a == 10 || a == 127 || a >= 224:
		case a == 100 && b >= 64 && b < 128:
		case a == 169 && b == 254:
		case a == 172 && b >= 16 && b < 32:
		case a == 192 && b == 168:
		case a == 192 && b == 0 && (c == 0 || c == 2):
		case a == 192 && b == 88 && c == 99:
		case a == 198 && (b == 18 || b == 19):
		case a == 198 && b == 51 && c == 100:
		case a == 203 && b == 0 && c == 113:
		case a == 52 && (b == 216 || b == 217):
		default:
			return netip.AddrFrom4([4]byte{a, b, c, byte(v)})
		}
	}
}

// random6 returns a random address in 2001:db8::/32.
func random6(r *rand.Rand) netip.Addr {
	var b [16]byte
	p := internet6.Addr().As16()
	copy(b[:4], p[:4])
	hi, lo := r.Uint64(), r.Uint64()
	for i := range 4 {
		b[4+i] = byte(hi >> (24 - 8*i))
	}
	for i := range 8 {
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	return netip.AddrFrom16(b)
}

// hostIn returns address number i of prefix p (IPv4).
func hostIn(p netip.Prefix, i uint32) netip.Addr {
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += i
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// ephemeralLinux returns a source port from Linux's default ephemeral
// range.
func ephemeralLinux(r *rand.Rand) uint16 { return uint16(32768 + r.IntN(28232)) }

// ephemeral returns a client source port: Linux's or Windows' range.
func ephemeral(r *rand.Rand) uint16 {
	if r.IntN(3) == 0 {
		return uint16(49152 + r.IntN(16384))
	}
	return ephemeralLinux(r)
}

// accepts reports whether the security groups of ifc let a connection from
// src to port (protocol proto) in.
func (ifc *Interface) accepts(src netip.Addr, port uint16, proto uint8) bool {
	inVPC := vpcV4.Contains(src) || vpcV6.Contains(src)
	office := officeNet.Contains(src)
	if proto == protoICMP || proto == protoICMPv6 {
		return inVPC || (office && ifc.Role == RoleBastion)
	}
	if proto != protoTCP {
		return false
	}
	switch ifc.Role {
	case RoleALB:
		return port == 443 || port == 80
	case RoleNAT:
		return false
	case RoleBastion:
		return port == 22 && (office || inVPC)
	case RoleLegacyWeb:
		return port == 80 || port == 443 || port == 22
	case RoleRDP:
		return port == 3389
	case RolePublicWeb:
		return port == 80 || port == 443 || (port == 22 && inVPC)
	case RoleApp:
		return inVPC && (port == 8080 || port == 22)
	case RoleWorker:
		return inVPC && port == 22
	case RolePostgres:
		return inVPC && (port == 5432 || port == 22)
	case RoleMySQL:
		return inVPC && (port == 3306 || port == 22)
	case RoleRedis:
		return inVPC && (port == 6379 || port == 22)
	}
	return false
}

// dbPort is the service port of a database interface.
func dbPort(ifc *Interface) uint16 {
	switch ifc.Role {
	case RoleMySQL:
		return 3306
	case RoleRedis:
		return 6379
	}
	return 5432
}
