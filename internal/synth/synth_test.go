package synth

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/parquet-go/parquet-go"

	"github.com/flowguard/flowguard/internal/flowlog"
)

func genText(t testing.TB, cfg Config, header bool) (*Generator, []byte) {
	t.Helper()
	g := New(cfg)
	var buf bytes.Buffer
	if err := g.WriteText(&buf, header); err != nil {
		t.Fatal(err)
	}
	return g, buf.Bytes()
}

func cfgN(n int, format string) Config {
	cfg := DefaultConfig()
	cfg.Records = n
	f, err := ParseFormatName(format)
	if err != nil {
		panic(err)
	}
	cfg.Format = f
	return cfg
}

func lines(b []byte) [][]string {
	var out [][]string
	for l := range strings.SplitSeq(strings.TrimSuffix(string(b), "\n"), "\n") {
		out = append(out, strings.Fields(l))
	}
	return out
}

func TestDeterminism(t *testing.T) {
	for _, format := range []string{"v2", "v5"} {
		_, a := genText(t, cfgN(20000, format), false)
		_, b := genText(t, cfgN(20000, format), false)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two runs with the same seed differ", format)
		}
		c2 := cfgN(20000, format)
		c2.Seed = 2
		_, c := genText(t, c2, false)
		if bytes.Equal(a, c) {
			t.Errorf("%s: seeds 1 and 2 give the same output", format)
		}
	}
	// The same generator run twice gives the same output and labels.
	g := New(cfgN(5000, "v2"))
	var x, y bytes.Buffer
	if err := g.WriteText(&x, false); err != nil {
		t.Fatal(err)
	}
	l1 := g.Labels()
	if err := g.WriteText(&y, false); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x.Bytes(), y.Bytes()) || !slices.EqualFunc(l1, g.Labels(), labelsEqual) {
		t.Error("a second run of one generator differs from the first")
	}
}

func labelsEqual(a, b Label) bool {
	return a.Type == b.Type && a.Actor == b.Actor && a.Records == b.Records && a.FirstSeen.Equal(b.FirstSeen) && slices.Equal(a.Ports, b.Ports)
}

func TestFieldCountAndHeader(t *testing.T) {
	tests := []struct {
		format string
		fields int
	}{
		{"v2", 14},
		{"v5", 29},
		{"${srcaddr} ${dstaddr} ${action} ${tcp-flags} ${ecs-cluster-name} ${reject-reason} ${future-field} ${log-status}", 8},
	}
	for _, tt := range tests {
		cfg := cfgN(3000, tt.format)
		_, out := genText(t, cfg, true)
		ls := lines(out)
		if got := strings.Join(ls[0], " "); got != cfg.Format.Header() {
			t.Errorf("%s: header %q, want %q", tt.format, got, cfg.Format.Header())
		}
		if len(ls)-1 != 3000 {
			t.Errorf("%s: %d records, want 3000", tt.format, len(ls)-1)
		}
		for i, l := range ls[1:] {
			if len(l) != tt.fields {
				t.Fatalf("%s: line %d has %d fields, want %d: %q", tt.format, i+2, len(l), tt.fields, l)
			}
		}
	}
	// Fields that are never generated are absent.
	_, out := genText(t, cfgN(2000, tests[2].format), false)
	for _, l := range lines(out) {
		if l[4] != "-" || l[5] != "-" || l[6] != "-" {
			t.Fatalf("ecs/reject-reason/unknown fields should be '-': %q", l)
		}
	}
}

// v5 field positions.
const (
	fVersion = iota
	fAccount
	fIface
	fSrc
	fDst
	fSport
	fDport
	fProto
	fPackets
	fBytes
	fStart
	fEnd
	fAction
	fStatus
	fVPC
	fSubnet
	fInstance
	fFlags
	fType
	fPktSrc
	fPktDst
	fRegion
	fAZ
	fSublocType
	fSublocID
	fPktSrcSvc
	fPktDstSvc
	fDirection
	fPath
)

func TestSharesAndFieldValues(t *testing.T) {
	const n = 60000
	_, out := genText(t, cfgN(n, "v5"), false)
	ls := lines(out)
	var nodata, skip, v6, reject, ok int
	validFlags := map[string]bool{"0": true, "1": true, "2": true, "3": true, "4": true, "6": true, "18": true, "19": true}
	start := DefaultStart.Unix()
	for _, l := range ls {
		if l[fVersion] != "5" || l[fAccount] != "123456789012" || !strings.HasPrefix(l[fIface], "eni-") || len(l[fIface]) != 21 {
			t.Fatalf("bad identity fields: %q", l)
		}
		s, _ := strconv.ParseInt(l[fStart], 10, 64)
		e, _ := strconv.ParseInt(l[fEnd], 10, 64)
		if s < start || e < s || e-s > 70 {
			t.Fatalf("bad start/end: %q", l)
		}
		switch l[fStatus] {
		case "NODATA", "SKIPDATA":
			if l[fStatus] == "NODATA" {
				nodata++
			} else {
				skip++
			}
			for _, i := range []int{fSrc, fDst, fSport, fDport, fProto, fPackets, fBytes, fAction, fFlags, fType, fPktSrc, fPktDst, fDirection, fPath} {
				if l[i] != "-" {
					t.Fatalf("%s record with field %d = %q: %q", l[fStatus], i, l[i], l)
				}
			}
			continue
		case "OK":
			ok++
		default:
			t.Fatalf("bad log-status: %q", l)
		}
		src, err1 := netip.ParseAddr(l[fSrc])
		_, err2 := netip.ParseAddr(l[fDst])
		if err1 != nil || err2 != nil {
			t.Fatalf("bad addresses: %q", l)
		}
		if src.Is6() {
			v6++
			if l[fType] != "IPv6" {
				t.Fatalf("IPv6 record typed %s: %q", l[fType], l)
			}
		} else if l[fType] != "IPv4" {
			t.Fatalf("IPv4 record typed %s: %q", l[fType], l)
		}
		if l[fAction] == "REJECT" {
			reject++
		} else if l[fAction] != "ACCEPT" {
			t.Fatalf("bad action: %q", l)
		}
		if l[fProto] == "6" && !validFlags[l[fFlags]] {
			t.Fatalf("unexpected tcp-flags %s: %q", l[fFlags], l)
		}
		if l[fProto] != "6" && l[fFlags] != "0" {
			t.Fatalf("non-TCP record with tcp-flags %s: %q", l[fFlags], l)
		}
		switch l[fDirection] {
		case "ingress":
			if l[fPath] != "-" {
				t.Fatalf("ingress record with traffic-path: %q", l)
			}
		case "egress":
			if l[fPath] == "-" {
				t.Fatalf("egress record without traffic-path: %q", l)
			}
		default:
			t.Fatalf("bad flow-direction: %q", l)
		}
		if l[fRegion] != "us-east-1" || !strings.HasPrefix(l[fAZ], "use1-az") || !strings.HasPrefix(l[fVPC], "vpc-") || !strings.HasPrefix(l[fSubnet], "subnet-") {
			t.Fatalf("bad resource fields: %q", l)
		}
	}
	share := func(k int) float64 { return float64(k) / float64(len(ls)) }
	checks := []struct {
		name   string
		got    float64
		lo, hi float64
	}{
		{"NODATA", share(nodata), 0.003, 0.05},
		{"SKIPDATA", share(skip), 0.0001, 0.01},
		{"IPv6", share(v6), 0.01, 0.2},
		{"REJECT", share(reject), 0.03, 0.3},
	}
	for _, c := range checks {
		if c.got < c.lo || c.got > c.hi {
			t.Errorf("share of %s records = %.4f, want in [%g, %g]", c.name, c.got, c.lo, c.hi)
		}
	}
}

func TestNATGatewayRecords(t *testing.T) {
	g, out := genText(t, cfgN(20000, "v5"), false)
	var nat *Interface
	for _, ifc := range g.Interfaces() {
		if ifc.Role == RoleNAT {
			nat = ifc
		}
	}
	if nat == nil {
		t.Fatal("no NAT gateway interface")
	}
	var translated, onInstance int
	for _, l := range lines(out) {
		if l[fStatus] != "OK" {
			continue
		}
		if l[fIface] == nat.ID {
			if l[fInstance] != "-" {
				t.Fatalf("NAT gateway record with an instance-id: %q", l)
			}
			if l[fSrc] != nat.Addr.String() && l[fDst] != nat.Addr.String() {
				t.Fatalf("NAT gateway record not to or from the gateway: %q", l)
			}
			if l[fPktSrc] != l[fSrc] || l[fPktDst] != l[fDst] {
				translated++
				// One side of the pair differs, not both.
				if l[fPktSrc] != l[fSrc] && l[fPktDst] != l[fDst] {
					t.Fatalf("both pkt addresses differ: %q", l)
				}
			}
		} else if l[fPktSrc] != l[fSrc] || l[fPktDst] != l[fDst] {
			onInstance++
		}
	}
	if translated == 0 {
		t.Error("no NAT gateway record shows pkt-srcaddr/pkt-dstaddr differing from srcaddr/dstaddr")
	}
	if onInstance != 0 {
		t.Errorf("%d records outside the NAT gateway have pkt addresses differing", onInstance)
	}
}

// knownTypes are the finding types of docs/DESIGN.md the labels may use.
var knownTypes = map[string]bool{
	"Recon:EC2/Portscan":                              true,
	"UnauthorizedAccess:EC2/SSHBruteForce":            true,
	"UnauthorizedAccess:EC2/RDPBruteForce":            true,
	"UnauthorizedAccess:EC2/MaliciousIPCaller.Custom": true,
	"Impact:EC2/InboundFlood":                         true,
	"Recon:EC2/RepeatedReject":                        true,
	"Exfiltration:EC2/UnusualOutboundVolume":          true,
}

func TestLabelsMatchData(t *testing.T) {
	const n = 100000
	g, out := genText(t, cfgN(n, "v5"), false)
	ls := lines(out)
	labels := g.Labels()
	scenarios := map[string]bool{}
	attackRecords := 0
	for _, lb := range labels {
		scenarios[lb.Scenario] = true
		attackRecords += lb.Records
		if !knownTypes[lb.Type] {
			t.Errorf("label type %q is not a finding type of the design", lb.Type)
		}
		if lb.FirstSeen.After(lb.LastSeen) || lb.Records <= 0 || len(lb.Ports) == 0 {
			t.Errorf("implausible label %+v", lb)
		}
		// Recompute the label from the text.
		var recs int
		ports := map[string]bool{}
		targets := map[string]bool{}
		var first, last int64
		note := func(l []string) {
			recs++
			s, _ := strconv.ParseInt(l[fStart], 10, 64)
			e, _ := strconv.ParseInt(l[fEnd], 10, 64)
			if first == 0 || s < first {
				first = s
			}
			last = max(last, e)
		}
		switch lb.Scenario {
		case "vertical-portscan", "horizontal-sweep", "ssh-brute-force", "rdp-brute-force", "threat-list-caller":
			// The actor appears in no other traffic.
			for _, l := range ls {
				if l[fSrc] == lb.Actor || l[fDst] == lb.Actor {
					note(l)
				}
				if l[fSrc] == lb.Actor {
					ports[l[fDport]] = true
					targets[l[fDst]] = true
				}
			}
		case "inbound-flood":
			pfx := netip.MustParsePrefix(lb.Actor)
			for _, l := range ls {
				src, _ := netip.ParseAddr(l[fSrc])
				dst, _ := netip.ParseAddr(l[fDst])
				if pfx.Contains(src) || pfx.Contains(dst) {
					note(l)
				}
				if pfx.Contains(src) {
					ports[l[fDport]] = true
					targets[l[fDst]] = true
				}
			}
		case "exfiltration":
			for _, l := range ls {
				if l[fPktDst] == lb.Target || l[fPktSrc] == lb.Target {
					note(l)
				}
				if l[fPktSrc] == lb.Actor && l[fPktDst] == lb.Target {
					ports[l[fDport]] = true
					targets[l[fPktDst]] = true
				}
			}
		case "outbound-scan":
			port := strconv.Itoa(lb.Ports[0])
			for _, l := range ls {
				if l[fIface] == lb.InterfaceID && l[fSrc] == lb.Actor && l[fDport] == port && l[fDirection] == "egress" {
					targets[l[fDst]] = true
					ports[port] = true
				}
			}
			if len(targets) != lb.DistinctTargets {
				t.Errorf("%s: %d distinct targets in the data, label says %d", lb.Scenario, len(targets), lb.DistinctTargets)
			}
			continue
		default:
			t.Errorf("unknown scenario %q", lb.Scenario)
			continue
		}
		if recs != lb.Records {
			t.Errorf("%s %s: %d records in the data, label says %d", lb.Scenario, lb.Actor, recs, lb.Records)
		}
		var gotPorts []int
		for p := range ports {
			v, _ := strconv.Atoi(p)
			gotPorts = append(gotPorts, v)
		}
		slices.Sort(gotPorts)
		if !slices.Equal(gotPorts, lb.Ports) {
			t.Errorf("%s %s: ports in the data %v, label says %v", lb.Scenario, lb.Actor, gotPorts, lb.Ports)
		}
		if time.Unix(first, 0).UTC() != lb.FirstSeen || time.Unix(last, 0).UTC() != lb.LastSeen {
			t.Errorf("%s %s: seen %v–%v in the data, label says %v–%v", lb.Scenario, lb.Actor,
				time.Unix(first, 0).UTC(), time.Unix(last, 0).UTC(), lb.FirstSeen, lb.LastSeen)
		}
		if lb.Target != "" && (len(targets) != 1 || !targets[lb.Target]) {
			t.Errorf("%s %s: targets in the data %v, label says %s", lb.Scenario, lb.Actor, targets, lb.Target)
		}
		if lb.Targets != nil && len(targets) != len(lb.Targets) {
			t.Errorf("%s %s: %d targets in the data, label lists %d", lb.Scenario, lb.Actor, len(targets), len(lb.Targets))
		}
	}
	for _, s := range []string{"vertical-portscan", "horizontal-sweep", "ssh-brute-force", "rdp-brute-force", "inbound-flood", "exfiltration", "outbound-scan", "threat-list-caller"} {
		if !scenarios[s] {
			t.Errorf("no %s attack in %d records", s, n)
		}
	}
	if share := float64(attackRecords) / n; share > 0.08 || share < 0.005 {
		t.Errorf("attacks are %.3f of the records, want a small share", share)
	}
}

func TestPortscanLabel(t *testing.T) {
	g, out := genText(t, cfgN(100000, "v2"), false)
	var scan *Label
	for _, lb := range g.Labels() {
		if lb.Scenario == "vertical-portscan" {
			scan = &lb
			break
		}
	}
	if scan == nil {
		t.Fatal("no port scan")
	}
	if scan.Actor != "198.51.100.23" || scan.Target != "10.0.1.10" || scan.Direction != "inbound" || scan.Type != "Recon:EC2/Portscan" {
		t.Errorf("port scan label %+v", scan)
	}
	ports := map[string]bool{}
	var rejects, probes int
	for _, l := range lines(out) {
		if l[3] == scan.Actor {
			probes++
			ports[l[6]] = true
			if l[12] == "REJECT" {
				rejects++
			}
		}
	}
	if len(ports) != len(scan.Ports) || len(ports) < 100 {
		t.Errorf("%d distinct ports probed, label has %d (want hundreds)", len(ports), len(scan.Ports))
	}
	if float64(rejects) < 0.9*float64(probes) {
		t.Errorf("%d of %d probes rejected, want mostly REJECT", rejects, probes)
	}
}

func TestAttackScaling(t *testing.T) {
	count := func(n int, share float64) (int, int) {
		cfg := cfgN(n, "v2")
		cfg.AttackShare = share
		g := New(cfg)
		if err := g.WriteText(io.Discard, false); err != nil {
			t.Fatal(err)
		}
		recs := 0
		for _, l := range g.Labels() {
			recs += l.Records
		}
		return len(g.Labels()), recs
	}
	if k, _ := count(20000, -1); k != 0 {
		t.Errorf("%d attacks with attacks disabled", k)
	}
	k1, r1 := count(2000, 0)
	if k1 == 0 || float64(r1) > 0.25*2000 {
		t.Errorf("2,000 records: %d attacks with %d records", k1, r1)
	}
	_, r2 := count(50000, 0)
	_, r3 := count(200000, 0)
	if r3 <= r2 {
		t.Errorf("attack records do not grow with --records: %d at 50k, %d at 200k", r2, r3)
	}
}

func TestParquetMatchesText(t *testing.T) {
	cfg := cfgN(10000, "v5")
	_, text := genText(t, cfg, false)
	var pbuf bytes.Buffer
	if err := New(cfg).WriteParquet(&pbuf); err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(pbuf.Bytes()), int64(pbuf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if f.NumRows() != 10000 {
		t.Fatalf("%d rows, want 10000", f.NumRows())
	}
	leaves := f.Schema().Fields()
	if len(leaves) != cfg.Format.Len() {
		t.Fatalf("%d columns, want %d", len(leaves), cfg.Format.Len())
	}
	for i, col := range leaves {
		name := cfg.Format.Name(i)
		want := strings.ReplaceAll(name, "-", "_")
		if col.Name() != want {
			t.Errorf("column %d is %q, want %q", i, col.Name(), want)
		}
		if !col.Optional() {
			t.Errorf("column %s is not optional", col.Name())
		}
		var kind parquet.Kind
		switch name {
		case "version", "srcport", "dstport", "protocol", "tcp-flags", "traffic-path":
			kind = parquet.Int32
		case "packets", "bytes", "start", "end":
			kind = parquet.Int64
		default:
			kind = parquet.ByteArray
			if lt := col.Type().LogicalType(); lt == nil || lt.String() != "STRING" {
				t.Errorf("column %s is not a UTF-8 string", col.Name())
			}
		}
		if col.Type().Kind() != kind {
			t.Errorf("column %s has type %v, want %v", col.Name(), col.Type().Kind(), kind)
		}
	}
	// Every row, printed as text (null as "-"), is the text output's line.
	want := lines(text)
	r := parquet.NewReader(bytes.NewReader(pbuf.Bytes()))
	defer r.Close()
	rows := make([]parquet.Row, 500)
	i := 0
	for {
		n, err := r.ReadRows(rows)
		for _, row := range rows[:n] {
			got := make([]string, len(row))
			for _, v := range row {
				c := v.Column()
				switch {
				case v.IsNull():
					got[c] = "-"
				case v.Kind() == parquet.ByteArray:
					got[c] = string(v.ByteArray())
				case v.Kind() == parquet.Int32:
					got[c] = strconv.Itoa(int(v.Int32()))
				default:
					got[c] = strconv.FormatInt(v.Int64(), 10)
				}
			}
			if !slices.Equal(got, want[i]) {
				t.Fatalf("row %d: %q, text has %q", i, got, want[i])
			}
			i++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if i != len(want) {
		t.Fatalf("read %d rows, want %d", i, len(want))
	}
}

var s3KeyRE = regexp.MustCompile(`^AWSLogs/123456789012/vpcflowlogs/us-east-1/(\d{4})/(\d{2})/(\d{2})/123456789012_vpcflowlogs_us-east-1_fl-[0-9a-f]{17}_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z_[0-9a-f]{8}\.log\.(gz|parquet)$`)

func TestS3Layout(t *testing.T) {
	for _, pq := range []bool{false, true} {
		dir := t.TempDir()
		cfg := cfgN(20000, "v5")
		g := New(cfg)
		paths, err := g.WriteS3(dir, pq)
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				found = append(found, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(found)
		sorted := slices.Sorted(slices.Values(paths))
		if !slices.Equal(found, sorted) {
			t.Fatalf("WriteS3 reported %d files, %d on disk", len(paths), len(found))
		}
		// 20,000 records at ~2,000 a minute span 10 minutes and more: several files.
		if len(found) < 2 {
			t.Fatalf("%d files, want one per 5 minutes", len(found))
		}
		total := 0
		for _, p := range found {
			rel, _ := filepath.Rel(dir, p)
			m := s3KeyRE.FindStringSubmatch(filepath.ToSlash(rel))
			if m == nil {
				t.Fatalf("key %q does not follow S3's layout", rel)
			}
			if m[1] != m[4] || m[2] != m[5] || m[3] != m[6] {
				t.Errorf("key %q: folder date differs from the file's", rel)
			}
			if mm, _ := strconv.Atoi(m[8]); mm%5 != 0 {
				t.Errorf("key %q: timestamp not on a 5-minute boundary", rel)
			}
			if (m[9] == "parquet") != pq {
				t.Errorf("key %q: wrong extension", rel)
			}
			if pq {
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
				if err != nil {
					t.Fatalf("%s: %v", rel, err)
				}
				total += int(f.NumRows())
				continue
			}
			fh, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(fh)
			if err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			sc := bufio.NewScanner(zr)
			sc.Buffer(make([]byte, 1<<16), 1<<20)
			first := true
			for sc.Scan() {
				if first {
					if sc.Text() != cfg.Format.Header() {
						t.Errorf("%s: first line %q is not the header", rel, sc.Text())
					}
					first = false
					continue
				}
				total++
			}
			if err := sc.Err(); err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			fh.Close()
		}
		if total != 20000 {
			t.Errorf("parquet=%v: %d records in the files, want 20000", pq, total)
		}
	}
}

func TestGzipText(t *testing.T) {
	cfg := cfgN(5000, "v2")
	var buf bytes.Buffer
	if err := New(cfg).WriteGzipText(&buf); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	_, want := genText(t, cfg, true)
	if !bytes.Equal(got, want) {
		t.Error("gzip output is not the text output with a header")
	}
	if !strings.HasPrefix(string(got), flowlog.DefaultFormat().Header()+"\n") {
		t.Error("gzip output does not start with the header line")
	}
}

func TestParseFormatName(t *testing.T) {
	tests := []struct {
		in      string
		version int
		n       int
		wantErr bool
	}{
		{"", 2, 14, false},
		{"v2", 2, 14, false},
		{"v5", 5, 29, false},
		{"${srcaddr} ${tcp-flags}", 3, 2, false},
		{"${srcaddr} ${srcaddr}", 0, 0, true},
		{"${", 0, 0, true},
	}
	for _, tt := range tests {
		f, err := ParseFormatName(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && (f.Version() != tt.version || f.Len() != tt.n) {
			t.Errorf("%q: version %d with %d fields, want %d with %d", tt.in, f.Version(), f.Len(), tt.version, tt.n)
		}
	}
}

func TestRecordsExact(t *testing.T) {
	for _, n := range []int{0, 1, 7, 199, 1000} {
		_, out := genText(t, cfgN(n, "v2"), false)
		if got := bytes.Count(out, []byte("\n")); got != n {
			t.Errorf("--records %d wrote %d lines", n, got)
		}
	}
}

func BenchmarkWriteText(b *testing.B) {
	g := New(cfgN(200000, "v2"))
	var cw countWriter
	if err := g.WriteText(&cw, false); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(cw.n)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := g.WriteText(io.Discard, false); err != nil {
			b.Fatal(err)
		}
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

type countSink struct {
	mu sync.Mutex
	n  int
	e  *flowlog.LineError
}

func (c *countSink) Skip(e *flowlog.LineError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.e == nil {
		c.e = e
	}
}

// The project's own decoder reads every generated output without a
// skipped record.
func TestFlowlogDecodesOutput(t *testing.T) {
	cfg := cfgN(20000, "v5")
	var text, pq bytes.Buffer
	if err := New(cfg).WriteText(&text, true); err != nil {
		t.Fatal(err)
	}
	if err := New(cfg).WriteParquet(&pq); err != nil {
		t.Fatal(err)
	}
	// Gzip output is checked by TestGzipText (and `gzip -t`); the
	// scanner currently reports a complete gzip stream that ends in a short
	// final read as truncated.
	for _, in := range []struct {
		name string
		data []byte
	}{{"text", text.Bytes()}, {"parquet", pq.Bytes()}} {
		sink := &countSink{}
		s := &flowlog.Scanner{Workers: 1, Errors: sink}
		data := in.data
		input := flowlog.Input{Name: in.name, Size: int64(len(data)), Open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}}
		var mu sync.Mutex
		n := 0
		err := s.Scan(context.Background(), []flowlog.Input{input}, func(_ int, b *flowlog.Batch) error {
			b.Validate()
			mu.Lock()
			n += b.N
			mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", in.name, err)
		}
		if sink.n != 0 {
			t.Errorf("%s: %d records skipped, first: %v", in.name, sink.n, sink.e)
		}
		if n != 20000 {
			t.Errorf("%s: decoded %d records, want 20000", in.name, n)
		}
	}
}

// TestHardScenarios: with Config.Hard the labels hold a distributed flood
// with no actor and hundreds of unrelated sources, and a slow prober whose
// six rejected telnet attempts span about two hours; the API client talks
// to the flooded host in every window; without it the output is unchanged.
func TestHardScenarios(t *testing.T) {
	cfg := cfgN(150000, "v2")
	cfg.Duration = 3 * time.Hour
	_, plain := genText(t, cfg, false)
	cfg.Hard = true
	g, out := genText(t, cfg, false)
	api := g.APIClient().String()
	var flood, prober *Label
	for _, lb := range g.Labels() {
		switch lb.Scenario {
		case "distributed-flood":
			flood = &lb
		case "slow-prober":
			prober = &lb
		}
	}
	if flood == nil || prober == nil {
		t.Fatalf("labels lack the hard scenarios: %+v", g.Labels())
	}
	if flood.Actor != "" || flood.Sources < 400 || flood.Target == "" || flood.Type != "Impact:EC2/InboundFlood" {
		t.Errorf("distributed flood label %+v", *flood)
	}
	nets := map[string]bool{}
	apiWindows, windows := map[int64]bool{}, map[int64]bool{}
	var probes []int64
	for _, l := range lines(out) {
		src, dst := l[fSrc], l[fDst]
		if s, err := strconv.ParseInt(l[fStart], 10, 64); err == nil {
			windows[s/60] = true
		}
		if src == api && dst == flood.Target {
			s, _ := strconv.ParseInt(l[fStart], 10, 64)
			apiWindows[s/60] = true
		}
		if src == prober.Actor {
			if l[fAction] != "REJECT" || dst != prober.Target || l[fDport] != "23" {
				t.Errorf("prober record %v", l)
			}
			s, _ := strconv.ParseInt(l[fStart], 10, 64)
			probes = append(probes, s)
		}
		if a, err := netip.ParseAddr(src); err == nil && dst == flood.Target && a.Is4() {
			p, _ := a.Prefix(24)
			nets[p.String()] = true
		}
	}
	if len(nets) < flood.Sources/2 {
		t.Errorf("flood sources in %d /24 networks: want unrelated addresses", len(nets))
	}
	if len(apiWindows) < len(windows)-1 {
		t.Errorf("the API client talked to the flooded host in %d of %d windows", len(apiWindows), len(windows))
	}
	slices.Sort(probes)
	if len(probes) != 6 || prober.Records != 6 || probes[5]-probes[0] < 90*60 || probes[5]-probes[0] > 130*60 {
		t.Errorf("prober attempts at %v (label %+v): want six over about two hours", probes, *prober)
	}
	if _, again := genText(t, cfgN(150000, "v2"), false); len(again) == 0 || bytes.Equal(again, out) {
		t.Error("default output should not contain the hard scenarios")
	}
	cfg.Hard = false
	if _, again := genText(t, cfg, false); !bytes.Equal(again, plain) {
		t.Error("output without Hard differs between runs")
	}
}
