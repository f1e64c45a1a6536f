package query

import "net/netip"

// Vec is a column of values for the rows of a frame. Only the entries of
// selected rows are meaningful. A constant Vec holds one value for every
// row.
type Vec struct {
	T     Type
	Const bool   // one value, at index 0, for every row
	Valid []bool // nil: every value present (addresses: also the zero Addr is absent)
	I     []int64
	F     []float64
	S     []string
	A     []netip.Addr
}

func (v *Vec) idx(i int) int {
	if v.Const {
		return 0
	}
	return i
}

// IsNull reports whether row i has no value.
func (v *Vec) IsNull(i int) bool {
	i = v.idx(i)
	if v.T == TNull {
		return true
	}
	if v.Valid != nil && !v.Valid[i] {
		return true
	}
	return v.T == TAddr && !v.A[i].IsValid()
}

// Value returns row i as a Value.
func (v *Vec) Value(i int) Value {
	if v.IsNull(i) {
		return Null
	}
	i = v.idx(i)
	switch v.T {
	case TBool, TInt, TTime:
		return Value{T: v.T, I: v.I[i]}
	case TFloat:
		return FloatValue(v.F[i])
	case TString:
		return StringValue(v.S[i])
	case TAddr:
		return AddrValue(v.A[i])
	}
	return Null
}

// reset sizes v for n rows of type t, reusing its storage.
func (v *Vec) reset(t Type, n int) {
	v.T, v.Const = t, false
	v.Valid = v.Valid[:0]
	v.Valid = nil
	switch t {
	case TBool, TInt, TTime:
		v.I = grow(v.I, n)
	case TFloat:
		v.F = grow(v.F, n)
	case TString:
		v.S = grow(v.S, n)
	case TAddr:
		v.A = grow(v.A, n)
	}
}

// valid returns v's validity slice sized for n rows, creating it (all
// true) on first use.
func (v *Vec) validity(n int, buf *[]bool) []bool {
	if v.Valid == nil {
		*buf = grow(*buf, n)
		for i := range *buf {
			(*buf)[i] = true
		}
		v.Valid = *buf
	}
	return v.Valid
}

// set stores x at row i; x must be null or of v's type (numbers convert).
func (v *Vec) set(i int, x Value, validBuf *[]bool, n int) {
	if x.T == TNull {
		v.validity(n, validBuf)[i] = false
		return
	}
	if v.Valid != nil {
		v.Valid[i] = true
	}
	switch v.T {
	case TBool, TInt, TTime:
		if x.T == TFloat {
			v.I[i] = int64(x.F)
		} else {
			v.I[i] = x.I
		}
	case TFloat:
		v.F[i], _ = x.Float()
	case TString:
		if x.T == TString {
			v.S[i] = x.S
		} else {
			v.S[i] = x.String()
		}
	case TAddr:
		v.A[i] = x.A
	}
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}

// constVec returns a constant vector holding x.
func constVec(x Value) *Vec {
	v := &Vec{T: x.T, Const: true}
	switch x.T {
	case TBool, TInt, TTime:
		v.I = []int64{x.I}
	case TFloat:
		v.F = []float64{x.F}
	case TString:
		v.S = []string{x.S}
	case TAddr:
		v.A = []netip.Addr{x.A}
	}
	return v
}

// gather returns a new vector whose row i is v's row perm[i].
func (v *Vec) gather(perm []int32) *Vec {
	out := &Vec{T: v.T, Const: v.Const}
	if v.Const {
		*out = *v
		return out
	}
	n := len(perm)
	if v.Valid != nil {
		out.Valid = make([]bool, n)
		for i, p := range perm {
			out.Valid[i] = v.Valid[p]
		}
	}
	switch v.T {
	case TBool, TInt, TTime:
		out.I = make([]int64, n)
		for i, p := range perm {
			out.I[i] = v.I[p]
		}
	case TFloat:
		out.F = make([]float64, n)
		for i, p := range perm {
			out.F[i] = v.F[p]
		}
	case TString:
		out.S = make([]string, n)
		for i, p := range perm {
			out.S[i] = v.S[p]
		}
	case TAddr:
		out.A = make([]netip.Addr, n)
		for i, p := range perm {
			out.A[i] = v.A[p]
		}
	}
	return out
}

// toFloat turns an integer vector into a float64 one, converting the
// values of the selected rows.
func (v *Vec) toFloat(sel []uint32) {
	if v.T == TFloat {
		return
	}
	n := len(v.I)
	v.F = grow(v.F, n)
	for _, i := range sel {
		v.F[i] = float64(v.I[i])
	}
	v.T = TFloat
}
