package query

import (
	"math"
	"net/netip"
	"regexp"
	"unsafe"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// constNode is a literal.
type constNode struct{ v *Vec }

func (n *constNode) typ() Type               { return n.v.T }
func (n *constNode) eval(*wctx, *frame) *Vec { return n.v }
func nullVec(t Type) *Vec                    { v := constVec(Value{T: t}); v.Valid = []bool{false}; return v }
func bytesToString(p []byte) string          { return unsafe.String(unsafe.SliceData(p), len(p)) }
func uintsAsInts(p []uint64) []int64 {
	return unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(p))), len(p))
}

// slotRef reads a column computed earlier in the pipeline, or a column of
// the input table.
type slotRef struct {
	slot int
	t    Type
}

func (n *slotRef) typ() Type { return n.t }
func (n *slotRef) eval(_ *wctx, f *frame) *Vec {
	if v := f.slots[n.slot]; v != nil {
		return v
	}
	return nullVec(n.t)
}

// batchField reads a flow log field of the batch, converting only the
// selected rows.
type batchField struct {
	id    int
	field flowlog.Field
	name  string
	t     Type
}

func (n *batchField) typ() Type { return n.t }

func (n *batchField) pos(b *flowlog.Batch) int {
	if n.field != flowlog.FieldUnknown {
		return b.Format.Index(n.field)
	}
	norm := flowlog.NormalizeName(n.name)
	for i := 0; i < b.Format.Len(); i++ {
		if flowlog.NormalizeName(b.Format.Name(i)) == norm {
			return i
		}
	}
	return -1
}

func (n *batchField) eval(w *wctx, f *frame) *Vec {
	b := f.b
	pos := n.pos(b)
	if pos < 0 {
		return nullVec(n.t)
	}
	v := &w.vecs[n.id]
	v.Const = false
	switch n.field.Kind() {
	case flowlog.KindUint:
		vals, present := b.Uints(pos, f.sel)
		var hi uint64
		for _, i := range f.sel {
			hi |= vals[i]
		}
		if hi <= math.MaxInt64 {
			v.T, v.I, v.Valid = TInt, uintsAsInts(vals), present
			break
		}
		// A value past the int64 range (the decoder reads uint64): this
		// batch's column is float64, as Logs Insights' numbers are.
		v.T, v.Valid = TFloat, present
		v.F = grow(v.F, b.N)
		for _, i := range f.sel {
			v.F[i] = float64(vals[i])
		}
	case flowlog.KindAddr:
		v.T, v.A, v.Valid = TAddr, b.Addrs(pos, f.sel), nil
	case flowlog.KindAction, flowlog.KindLogStatus:
		v.reset(TString, b.N)
		valid := v.validity(b.N, &w.valid[n.id])
		if n.field.Kind() == flowlog.KindAction {
			acts := b.Actions(pos, f.sel)
			for _, i := range f.sel {
				valid[i] = acts[i] != flowlog.ActionAbsent
				v.S[i] = acts[i].String()
			}
		} else {
			sts := b.LogStatuses(pos, f.sel)
			for _, i := range f.sel {
				valid[i] = sts[i] != flowlog.LogStatusAbsent
				v.S[i] = sts[i].String()
			}
		}
	default:
		v.reset(TString, b.N)
		valid := v.validity(b.N, &w.valid[n.id])
		for _, i := range f.sel {
			s, ok := b.String(int(i), pos)
			v.S[i], valid[i] = bytesToString(s), ok
		}
	}
	return v
}

// selector is a condition that can narrow a selection directly, without
// making a vector of booleans first: the filters of the hot path.
type selector interface {
	// selectRows appends to out the rows of f.sel where the condition
	// holds, in order, and returns it.
	selectRows(w *wctx, f *frame, out []uint32) []uint32
}

// enumEq is `action = "REJECT"` or `logStatus != "OK"`, compared on the
// decoded enum without making strings.
type enumEq struct {
	id   int
	f    *batchField
	want string
	not  bool
}

func (n *enumEq) typ() Type { return TBool }
func (n *enumEq) eval(w *wctx, f *frame) *Vec {
	out := w.out(n.id, TBool, f.n)
	enums, want, ok := n.enums(f)
	for _, i := range f.sel {
		out.I[i] = b2i(ok && n.holds(enums[i], want))
	}
	return out
}

func (n *enumEq) selectRows(w *wctx, f *frame, out []uint32) []uint32 {
	enums, want, ok := n.enums(f)
	if !ok {
		return out
	}
	for _, i := range f.sel {
		if n.holds(enums[i], want) {
			out = append(out, i)
		}
	}
	return out
}

// holds compares one value: absent values compare false both ways, and a
// wanted value that does not exist (want 0) matches nothing.
func (n *enumEq) holds(e, want uint8) bool {
	if n.not {
		return e != want && e != 0
	}
	return e == want && want != 0
}

// enums returns the field's decoded values and the one compared with;
// ok is false when the batch's format lacks the field.
func (n *enumEq) enums(f *frame) (enums []uint8, want uint8, ok bool) {
	b := f.b
	pos := n.f.pos(b)
	if pos < 0 {
		return nil, 0, false
	}
	if n.f.field.Kind() == flowlog.KindAction {
		acts := b.Actions(pos, f.sel)
		enums = unsafe.Slice((*uint8)(unsafe.SliceData(acts)), len(acts))
		for a := flowlog.ActionAccept; a <= flowlog.ActionReject; a++ {
			if a.String() == n.want {
				want = uint8(a)
			}
		}
	} else {
		sts := b.LogStatuses(pos, f.sel)
		enums = unsafe.Slice((*uint8)(unsafe.SliceData(sts)), len(sts))
		for s := flowlog.LogStatusOK; s <= flowlog.LogStatusSkipData; s++ {
			if s.String() == n.want {
				want = uint8(s)
			}
		}
	}
	return enums, want, true
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// maxSeconds is the largest start time whose milliseconds fit int64.
const maxSeconds = math.MaxInt64 / 1000

// pseudoField is @timestamp, @message, @logStream, @log or @ingestionTime.
type pseudoField struct {
	id    int
	which int
	t     Type
}

func (n *pseudoField) typ() Type { return n.t }
func (n *pseudoField) eval(w *wctx, f *frame) *Vec {
	b := f.b
	switch n.which {
	case pseudoTimestamp:
		pos := b.Format.Index(flowlog.FieldStart)
		if pos < 0 {
			return nullVec(TTime)
		}
		vals, present := b.Uints(pos, f.sel)
		out := w.out(n.id, TTime, f.n)
		out.Valid = present
		for _, i := range f.sel {
			out.I[i] = int64(vals[i]) * 1000
		}
		for _, i := range f.sel {
			if vals[i] > maxSeconds {
				// A start time whose milliseconds do not fit int64
				// (hundreds of millions of years away) is no time.
				valid := w.valid[n.id][:0]
				if present == nil {
					for range b.N {
						valid = append(valid, true)
					}
				} else {
					valid = append(valid, present...)
				}
				for _, j := range f.sel {
					if vals[j] > maxSeconds {
						valid[j] = false
					}
				}
				w.valid[n.id], out.Valid = valid, valid
				break
			}
		}
		return out
	case pseudoMessage:
		out := w.out(n.id, TString, f.n)
		for _, i := range f.sel {
			if m := b.RawLine(int(i)); m != nil {
				out.S[i] = bytesToString(m)
			} else {
				out.S[i] = string(b.Message(int(i), nil))
			}
		}
		return out
	case pseudoLogStream:
		pos := b.Format.Index(flowlog.FieldInterfaceID)
		if pos < 0 {
			return nullVec(TString)
		}
		out := w.out(n.id, TString, f.n)
		valid := out.validity(f.n, &w.valid[n.id])
		for _, i := range f.sel {
			s, ok := b.String(int(i), pos)
			out.S[i], valid[i] = bytesToString(s), ok
		}
		return out
	case pseudoLog:
		return constVec(StringValue(b.Source))
	}
	return nullVec(n.t)
}

// truth returns whether row i of a condition vector holds: true booleans,
// non-zero numbers, non-empty strings; null is false.
func truth(v *Vec, i int) bool {
	if v.IsNull(i) {
		return false
	}
	j := v.idx(i)
	switch v.T {
	case TBool, TInt, TTime:
		return v.I[j] != 0
	case TFloat:
		return v.F[j] != 0
	case TString:
		return v.S[j] != ""
	case TAddr:
		return true
	}
	return false
}

// notNode is `not x`; null counts as false, so `not` of it is true.
type notNode struct {
	id int
	x  node
}

func (n *notNode) typ() Type { return TBool }
func (n *notNode) eval(w *wctx, f *frame) *Vec {
	x := n.x.eval(w, f)
	out := w.out(n.id, TBool, f.n)
	for _, i := range f.sel {
		out.I[i] = b2i(!truth(x, int(i)))
	}
	return out
}

// logicNode is `l and r` or `l or r`. The right side is evaluated only for
// the rows where the left side does not decide, so that a cheap test first
// spares the conversion of other columns.
type logicNode struct {
	id   int
	and  bool
	l, r node
}

func (n *logicNode) typ() Type { return TBool }
func (n *logicNode) eval(w *wctx, f *frame) *Vec {
	l := n.l.eval(w, f)
	out := w.out(n.id, TBool, f.n)
	sub := w.nodeSel(n.id, len(f.sel))
	for _, i := range f.sel {
		t := truth(l, int(i))
		out.I[i] = b2i(t)
		if t == n.and {
			sub = append(sub, i)
		}
	}
	if len(sub) > 0 {
		saved := f.sel
		f.sel = sub
		r := n.r.eval(w, f)
		f.sel = saved
		for _, i := range sub {
			out.I[i] = b2i(truth(r, int(i)))
		}
	}
	w.putNodeSel(n.id, sub)
	return out
}

// cmpNode compares two values; null on either side is false.
type cmpNode struct {
	id   int
	op   string
	l, r node
}

func (n *cmpNode) typ() Type { return TBool }

func cmpHolds(op string, c int) bool {
	switch op {
	case "=":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}

func (n *cmpNode) eval(w *wctx, f *frame) *Vec {
	l := n.l.eval(w, f)
	r := n.r.eval(w, f)
	out := w.out(n.id, TBool, f.n)
	if r.Const && !r.IsNull(0) && !l.Const {
		switch {
		case (l.T == TInt || l.T == TTime) && (r.T == TInt || r.T == TTime):
			c := r.I[0]
			for _, i := range f.sel {
				out.I[i] = b2i((l.Valid == nil || l.Valid[i]) && cmpHolds(n.op, cmpInt(l.I[i], c)))
			}
			return out
		case l.T == TAddr && r.T == TAddr:
			c := r.A[0]
			for _, i := range f.sel {
				a := l.A[i]
				out.I[i] = b2i(a.IsValid() && cmpHolds(n.op, a.Compare(c)))
			}
			return out
		case l.T == TString && r.T == TString && (n.op == "=" || n.op == "!="):
			c := r.S[0]
			eq := n.op == "="
			for _, i := range f.sel {
				out.I[i] = b2i((l.Valid == nil || l.Valid[i]) && (l.S[i] == c) == eq)
			}
			return out
		}
	}
	for _, i := range f.sel {
		c, ok := compare(l.Value(int(i)), r.Value(int(i)))
		out.I[i] = b2i(ok && cmpHolds(n.op, c))
	}
	return out
}

// inNode is `x in [a, b]` or `x not in [a, b]`.
type inNode struct {
	id   int
	x    node
	list []Value
	not  bool
}

func (n *inNode) typ() Type { return TBool }
func (n *inNode) eval(w *wctx, f *frame) *Vec {
	x := n.x.eval(w, f)
	out := w.out(n.id, TBool, f.n)
	for _, i := range f.sel {
		v := x.Value(int(i))
		if v.IsNull() {
			out.I[i] = 0
			continue
		}
		hit := false
		for _, c := range n.list {
			if d, ok := compare(v, c); ok && d == 0 {
				hit = true
				break
			}
		}
		out.I[i] = b2i(hit != n.not)
	}
	return out
}

// matchNode is `x like /re/`, `x =~ /re/` or `x not like /re/`.
type matchNode struct {
	id  int
	x   node
	re  *regexp.Regexp
	not bool
}

func (n *matchNode) typ() Type { return TBool }
func (n *matchNode) eval(w *wctx, f *frame) *Vec {
	x := n.x.eval(w, f)
	out := w.out(n.id, TBool, f.n)
	for _, i := range f.sel {
		if x.IsNull(int(i)) {
			out.I[i] = 0
			continue
		}
		var s string
		if x.T == TString {
			s = x.S[x.idx(int(i))]
		} else {
			w.buf = x.Value(int(i)).Append(w.buf[:0])
			s = bytesToString(w.buf)
		}
		out.I[i] = b2i(n.re.MatchString(s) != n.not)
	}
	return out
}

// arithNode is + - * / % ^.
type arithNode struct {
	id   int
	op   string
	l, r node
	t    Type
}

func (n *arithNode) typ() Type { return n.t }
func (n *arithNode) eval(w *wctx, f *frame) *Vec {
	l := n.l.eval(w, f)
	r := n.r.eval(w, f)
	out := w.out(n.id, n.t, f.n)
	for _, i := range f.sel {
		v := arith(n.op, l.Value(int(i)), r.Value(int(i)), n.t)
		if v.T == TFloat && out.T != TFloat {
			// Integer arithmetic past the int64 range goes on in
			// float64, as Logs Insights' numbers do.
			out.toFloat(f.sel)
		}
		out.set(int(i), v, &w.valid[n.id], f.n)
	}
	return out
}

func arith(op string, a, b Value, t Type) Value {
	if (t == TInt || t == TTime) && a.T != TFloat && b.T != TFloat {
		x, ok1 := a.Int()
		y, ok2 := b.Int()
		if !ok1 || !ok2 {
			return Null
		}
		var z int64
		switch op {
		case "+":
			z = x + y
			if (x >= 0) == (y >= 0) && (z >= 0) != (x >= 0) {
				return FloatValue(float64(x) + float64(y)) // past int64
			}
		case "-":
			z = x - y
			if (x >= 0) != (y >= 0) && (z >= 0) != (x >= 0) {
				return FloatValue(float64(x) - float64(y))
			}
		case "*":
			z = x * y
			if x != 0 && (z/x != y || x == -1 && y == math.MinInt64) {
				return FloatValue(float64(x) * float64(y))
			}
		case "%":
			if y == 0 {
				return Null
			}
			z = x % y
		}
		return Value{T: t, I: z}
	}
	x, ok1 := a.Float()
	y, ok2 := b.Float()
	if !ok1 || !ok2 {
		return Null
	}
	var z float64
	switch op {
	case "+":
		z = x + y
	case "-":
		z = x - y
	case "*":
		z = x * y
	case "/":
		if y == 0 {
			return Null
		}
		z = x / y
	case "%":
		if y == 0 {
			return Null
		}
		z = math.Mod(x, y)
	case "^":
		z = math.Pow(x, y)
	}
	if math.IsNaN(z) || math.IsInf(z, 0) {
		return Null
	}
	return FloatValue(z)
}

// subnetNode is isIpInSubnet(ip, "cidr") with a constant prefix.
type subnetNode struct {
	id     int
	x      node
	prefix netip.Prefix
	family int // 0 any, 4 or 6
}

func (n *subnetNode) typ() Type { return TBool }
func (n *subnetNode) eval(w *wctx, f *frame) *Vec {
	x := n.x.eval(w, f)
	out := w.out(n.id, TBool, f.n)
	for _, i := range f.sel {
		var a netip.Addr
		if x.T == TAddr {
			a = x.A[x.idx(int(i))]
		} else if !x.IsNull(int(i)) {
			a, _ = netip.ParseAddr(x.Value(int(i)).String())
		}
		ok := a.IsValid() && n.prefix.Contains(a.Unmap())
		if n.family == 4 && !a.Unmap().Is4() || n.family == 6 && !a.Is6() {
			ok = false
		}
		out.I[i] = b2i(ok)
	}
	return out
}
