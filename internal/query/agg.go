package query

import (
	"math"
	"slices"
)

// aggregator keeps the state of one aggregate function for every group.
type aggregator interface {
	grow(groups int)
	// update adds the selected rows; gid[i] is row i's group.
	update(gid []int32, sel []uint32, arg *Vec, ts *Vec)
	// merge adds group sg of src (the same kind of aggregator) to group g.
	merge(g int32, src aggregator, sg int32)
	result(g int32) Value
}

// aggSpec is a compiled aggregate call of stats.
type aggSpec struct {
	name string
	fn   string
	arg  node // nil for count(*) and count()
	ts   node // @timestamp, for earliest and latest
	pct  float64
	t    Type
}

var aggregates = map[string]bool{
	"count": true, "count_distinct": true, "sum": true, "avg": true, "min": true, "max": true,
	"stddev": true, "pct": true, "percentile": true, "earliest": true, "latest": true,
	"sortsfirst": true, "sortslast": true,
}

func isAggregate(name string) bool { return aggregates[name] }

func (e *env) compileAgg(p Projection) (aggSpec, error) {
	x, ok := p.Expr.(*CallExpr)
	if !ok || !isAggregate(x.Name) {
		return aggSpec{}, errorf(p.Expr.Position(), "stats needs aggregate functions such as count(), sum(bytes) or avg(packets); %s is not one", p.Expr)
	}
	a := aggSpec{name: p.Name(), fn: x.Name}
	if x.Name == "percentile" {
		a.fn = "pct"
	}
	switch a.fn {
	case "count":
		if len(x.Args) > 1 {
			return a, errorf(x.P, "count takes one field, * or nothing")
		}
		a.t = TInt
		if len(x.Args) == 0 {
			return a, nil
		}
	case "pct":
		if len(x.Args) != 2 {
			return a, errorf(x.P, "pct takes a field and a percentile, as in pct(bytes, 95)")
		}
		lit, ok := x.Args[1].(*NumberLit)
		if !ok || lit.Float < 0 || lit.Float > 100 {
			return a, errorf(x.Args[1].Position(), "the percentile must be a number from 0 to 100")
		}
		a.pct = lit.Float
	default:
		if x.Star || len(x.Args) != 1 {
			return a, errorf(x.P, "%s takes one field", x.Name)
		}
	}
	arg, err := e.compile(x.Args[0])
	if err != nil {
		return a, err
	}
	a.arg = arg
	switch a.fn {
	case "count", "count_distinct":
		a.t = TInt
	case "sum":
		a.t = TFloat
		if t := arg.typ(); t == TInt {
			a.t = TInt
		}
	case "avg", "stddev":
		a.t = TFloat
	case "pct":
		a.t = TFloat
		if arg.typ() == TInt || arg.typ() == TTime {
			a.t = arg.typ()
		}
	case "min", "max", "earliest", "latest", "sortsfirst", "sortslast":
		a.t = arg.typ()
	}
	if a.fn == "earliest" || a.fn == "latest" {
		ts, err := e.resolve(&FieldRef{P: x.P, Name: "@timestamp"})
		if err != nil {
			// After a first stats there is no @timestamp: order by
			// arrival, which is input order.
			ts = nil
		}
		a.ts = ts
	}
	return a, nil
}

func (a *aggSpec) newAggregator() aggregator {
	switch a.fn {
	case "count":
		return &countAgg{}
	case "count_distinct":
		return &distinctAgg{}
	case "sum":
		return &sumAgg{float: a.t == TFloat}
	case "avg":
		return &avgAgg{}
	case "stddev":
		return &stddevAgg{}
	case "min":
		return &extremeAgg{sign: -1}
	case "max":
		return &extremeAgg{sign: 1}
	case "sortsfirst":
		return &extremeAgg{sign: -1, sortOrder: true}
	case "sortslast":
		return &extremeAgg{sign: 1, sortOrder: true}
	case "pct":
		return &pctAgg{p: a.pct, t: a.t}
	case "earliest":
		return &timedAgg{}
	case "latest":
		return &timedAgg{latest: true}
	}
	panic("unknown aggregate " + a.fn)
}

type countAgg struct{ n []int64 }

func (c *countAgg) grow(g int) { c.n = growZero(c.n, g) }
func (c *countAgg) update(gid []int32, sel []uint32, arg, _ *Vec) {
	if arg == nil {
		for _, i := range sel {
			c.n[gid[i]]++
		}
		return
	}
	for _, i := range sel {
		if !arg.IsNull(int(i)) {
			c.n[gid[i]]++
		}
	}
}
func (c *countAgg) merge(g int32, src aggregator, sg int32) { c.n[g] += src.(*countAgg).n[sg] }
func (c *countAgg) result(g int32) Value                    { return IntValue(c.n[g]) }

// sumAgg sums integers exactly while they fit int64; a group whose sum
// goes past that range (or that meets a float64 value) goes on in float64,
// as Logs Insights' numbers do: big marks it, and its sum is f + i.
type sumAgg struct {
	float bool
	i     []int64
	f     []float64
	has   []bool
	big   []bool
}

func (s *sumAgg) grow(g int) {
	s.i, s.f, s.has, s.big = growZero(s.i, g), growZero(s.f, g), growZero(s.has, g), growZero(s.big, g)
}

// addInt adds x to group g's integer sum, spilling to float64 on overflow.
func (s *sumAgg) addInt(g int32, x int64) {
	z := s.i[g] + x
	if (s.i[g] >= 0) == (x >= 0) && (z >= 0) != (x >= 0) {
		s.f[g] += float64(s.i[g]) + float64(x)
		s.i[g], s.big[g] = 0, true
		return
	}
	s.i[g] = z
}

func (s *sumAgg) update(gid []int32, sel []uint32, arg, _ *Vec) {
	if arg.T == TInt && !s.float && !arg.Const {
		for _, i := range sel {
			if arg.Valid == nil || arg.Valid[i] {
				g := gid[i]
				s.addInt(g, arg.I[i])
				s.has[g] = true
			}
		}
		return
	}
	for _, i := range sel {
		v := arg.Value(int(i))
		if v.IsNull() {
			continue
		}
		g := gid[i]
		if !s.float && v.T != TFloat {
			if x, ok := v.Int(); ok {
				s.addInt(g, x)
				s.has[g] = true
			}
		} else if x, ok := v.Float(); ok {
			s.f[g] += x
			s.has[g] = true
			s.big[g] = s.big[g] || !s.float
		}
	}
}
func (s *sumAgg) merge(g int32, src aggregator, sg int32) {
	o := src.(*sumAgg)
	s.addInt(g, o.i[sg])
	s.f[g] += o.f[sg]
	s.has[g] = s.has[g] || o.has[sg]
	s.big[g] = s.big[g] || o.big[sg]
}
func (s *sumAgg) result(g int32) Value {
	switch {
	case !s.has[g]:
		return Null
	case s.float:
		return FloatValue(s.f[g])
	case s.big[g]:
		return FloatValue(s.f[g] + float64(s.i[g]))
	}
	return IntValue(s.i[g])
}

type avgAgg struct {
	sum []float64
	n   []int64
}

func (a *avgAgg) grow(g int) { a.sum, a.n = growZero(a.sum, g), growZero(a.n, g) }
func (a *avgAgg) update(gid []int32, sel []uint32, arg, _ *Vec) {
	for _, i := range sel {
		if x, ok := arg.Value(int(i)).Float(); ok && !arg.IsNull(int(i)) {
			a.sum[gid[i]] += x
			a.n[gid[i]]++
		}
	}
}
func (a *avgAgg) merge(g int32, src aggregator, sg int32) {
	o := src.(*avgAgg)
	a.sum[g] += o.sum[sg]
	a.n[g] += o.n[sg]
}
func (a *avgAgg) result(g int32) Value {
	if a.n[g] == 0 {
		return Null
	}
	return FloatValue(a.sum[g] / float64(a.n[g]))
}

// stddevAgg is the sample standard deviation, by Welford's method, merged
// with Chan's formula.
type stddevAgg struct {
	n, mean, m2 []float64
}

func (s *stddevAgg) grow(g int) {
	s.n, s.mean, s.m2 = growZero(s.n, g), growZero(s.mean, g), growZero(s.m2, g)
}
func (s *stddevAgg) update(gid []int32, sel []uint32, arg, _ *Vec) {
	for _, i := range sel {
		if arg.IsNull(int(i)) {
			continue
		}
		x, ok := arg.Value(int(i)).Float()
		if !ok {
			continue
		}
		g := gid[i]
		s.n[g]++
		d := x - s.mean[g]
		s.mean[g] += d / s.n[g]
		s.m2[g] += d * (x - s.mean[g])
	}
}
func (s *stddevAgg) merge(g int32, src aggregator, sg int32) {
	o := src.(*stddevAgg)
	n := s.n[g] + o.n[sg]
	if n == 0 {
		return
	}
	d := o.mean[sg] - s.mean[g]
	s.m2[g] += o.m2[sg] + d*d*s.n[g]*o.n[sg]/n
	s.mean[g] += d * o.n[sg] / n
	s.n[g] = n
}
func (s *stddevAgg) result(g int32) Value {
	if s.n[g] < 2 {
		if s.n[g] == 1 {
			return FloatValue(0)
		}
		return Null
	}
	return FloatValue(math.Sqrt(s.m2[g] / (s.n[g] - 1)))
}

// extremeAgg is min (sign -1) or max (sign 1); with sortOrder it is
// sortsFirst or sortsLast: the value that sorts first or last, in the
// order sort puts values in (numbers by value, addresses as addresses,
// other text by its bytes, mixed types by their text).
type extremeAgg struct {
	sign      int
	sortOrder bool
	v         []Value
}

func (e *extremeAgg) grow(g int) { e.v = growZero(e.v, g) }
func (e *extremeAgg) update(gid []int32, sel []uint32, arg, _ *Vec) {
	for _, i := range sel {
		e.add(gid[i], arg.Value(int(i)))
	}
}
func (e *extremeAgg) add(g int32, v Value) {
	if v.IsNull() {
		return
	}
	if cur := e.v[g]; cur.IsNull() {
		e.v[g] = copyValue(v)
	} else if e.sortOrder {
		if compareNullsLast(v, cur)*e.sign > 0 {
			e.v[g] = copyValue(v)
		}
	} else if c, ok := compare(v, cur); ok && c*e.sign > 0 {
		e.v[g] = copyValue(v)
	}
}
func (e *extremeAgg) merge(g int32, src aggregator, sg int32) { e.add(g, src.(*extremeAgg).v[sg]) }
func (e *extremeAgg) result(g int32) Value                    { return e.v[g] }

type distinctAgg struct{ sets []map[string]struct{} }

func (d *distinctAgg) grow(g int) { d.sets = growZero(d.sets, g) }
func (d *distinctAgg) update(gid []int32, sel []uint32, arg, _ *Vec) {
	var buf []byte
	for _, i := range sel {
		v := arg.Value(int(i))
		if v.IsNull() {
			continue
		}
		g := gid[i]
		if d.sets[g] == nil {
			d.sets[g] = make(map[string]struct{})
		}
		buf = v.Append(buf[:0])
		if _, ok := d.sets[g][string(buf)]; !ok {
			d.sets[g][string(buf)] = struct{}{}
		}
	}
}
func (d *distinctAgg) merge(g int32, src aggregator, sg int32) {
	o := src.(*distinctAgg).sets[sg]
	if len(o) == 0 {
		return
	}
	if d.sets[g] == nil {
		d.sets[g] = make(map[string]struct{}, len(o))
	}
	for k := range o {
		d.sets[g][k] = struct{}{}
	}
}
func (d *distinctAgg) result(g int32) Value { return IntValue(int64(len(d.sets[g]))) }

// pctAgg keeps the values and answers by nearest rank.
type pctAgg struct {
	p    float64
	t    Type
	vals [][]float64
}

func (a *pctAgg) grow(g int) { a.vals = growZero(a.vals, g) }
func (a *pctAgg) update(gid []int32, sel []uint32, arg, _ *Vec) {
	for _, i := range sel {
		if arg.IsNull(int(i)) {
			continue
		}
		if x, ok := arg.Value(int(i)).Float(); ok {
			a.vals[gid[i]] = append(a.vals[gid[i]], x)
		}
	}
}
func (a *pctAgg) merge(g int32, src aggregator, sg int32) {
	a.vals[g] = append(a.vals[g], src.(*pctAgg).vals[sg]...)
}
func (a *pctAgg) result(g int32) Value {
	v := a.vals[g]
	if len(v) == 0 {
		return Null
	}
	slices.Sort(v)
	rank := int(math.Ceil(a.p/100*float64(len(v)))) - 1
	x := v[max(0, min(rank, len(v)-1))]
	if (a.t == TInt || a.t == TTime) && x >= math.MinInt64 && x < math.MaxInt64 {
		return Value{T: a.t, I: int64(x)}
	}
	return FloatValue(x)
}

// timedAgg is earliest (the value at the smallest @timestamp) or latest.
type timedAgg struct {
	latest bool
	v      []Value
	ts     []int64
	has    []bool
	seq    int64
}

func (a *timedAgg) grow(g int) {
	a.v, a.ts, a.has = growZero(a.v, g), growZero(a.ts, g), growZero(a.has, g)
}
func (a *timedAgg) update(gid []int32, sel []uint32, arg, ts *Vec) {
	for _, i := range sel {
		v := arg.Value(int(i))
		if v.IsNull() {
			continue
		}
		t := a.seq
		a.seq++
		if ts != nil {
			if ts.IsNull(int(i)) {
				continue
			}
			t = ts.I[ts.idx(int(i))]
		}
		a.add(gid[i], v, t)
	}
}
func (a *timedAgg) add(g int32, v Value, t int64) {
	if !a.has[g] || (a.latest && t > a.ts[g]) || (!a.latest && t < a.ts[g]) {
		a.v[g], a.ts[g], a.has[g] = copyValue(v), t, true
	}
}
func (a *timedAgg) merge(g int32, src aggregator, sg int32) {
	o := src.(*timedAgg)
	if o.has[sg] {
		a.add(g, o.v[sg], o.ts[sg])
	}
}
func (a *timedAgg) result(g int32) Value {
	if !a.has[g] {
		return Null
	}
	return a.v[g]
}

// growZero extends s to n elements, the new ones zero.
func growZero[T any](s []T, n int) []T {
	if n <= len(s) {
		return s
	}
	if n <= cap(s) {
		old := len(s)
		s = s[:n]
		clear(s[old:])
		return s
	}
	t := make([]T, n, max(n, 2*cap(s)))
	copy(t, s)
	return t
}
