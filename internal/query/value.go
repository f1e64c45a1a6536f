package query

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Type is the type of a value in a query.
type Type uint8

// Value types. Logs Insights knows strings, numbers and timestamps;
// flowguard keeps integers apart from floats and addresses apart from
// strings so that flow log columns need no conversion, but they behave as
// Insights' numbers and strings do.
const (
	TNull   Type = iota
	TBool        // result of comparisons
	TInt         // int64
	TFloat       // float64
	TString      // string
	TTime        // milliseconds since the Unix epoch (@timestamp, bin())
	TAddr        // netip.Addr; prints and compares with strings as its text
)

func (t Type) String() string {
	return [...]string{"null", "boolean", "integer", "number", "string", "timestamp", "address"}[t]
}

func (t Type) numeric() bool { return t == TInt || t == TFloat || t == TTime }

// Value is one value: a cell of a result, a constant, or a function
// argument on the slow path.
type Value struct {
	T Type
	I int64 // TInt, TTime, TBool (0 or 1)
	F float64
	S string
	A netip.Addr
}

// Null is the absent value.
var Null = Value{}

// IntValue, FloatValue, StringValue, BoolValue, TimeValue and AddrValue make
// values.
func IntValue(v int64) Value     { return Value{T: TInt, I: v} }
func FloatValue(v float64) Value { return Value{T: TFloat, F: v} }
func StringValue(s string) Value { return Value{T: TString, S: s} }
func TimeValue(ms int64) Value   { return Value{T: TTime, I: ms} }
func AddrValue(a netip.Addr) Value {
	if !a.IsValid() {
		return Null
	}
	return Value{T: TAddr, A: a}
}
func BoolValue(b bool) Value {
	if b {
		return Value{T: TBool, I: 1}
	}
	return Value{T: TBool}
}

// IsNull reports whether v is absent.
func (v Value) IsNull() bool { return v.T == TNull }

// Float returns v as a number, and whether it is one (strings holding a
// number count).
func (v Value) Float() (float64, bool) {
	switch v.T {
	case TInt, TTime, TBool:
		return float64(v.I), true
	case TFloat:
		return v.F, true
	case TString:
		f, err := strconv.ParseFloat(strings.TrimSpace(v.S), 64)
		return f, err == nil
	}
	return 0, false
}

// Int returns v as an integer, and whether it is one.
func (v Value) Int() (int64, bool) {
	switch v.T {
	case TInt, TTime, TBool:
		return v.I, true
	case TFloat:
		if v.F == math.Trunc(v.F) && math.Abs(v.F) < 1<<62 {
			return int64(v.F), true
		}
	case TString:
		i, err := strconv.ParseInt(strings.TrimSpace(v.S), 10, 64)
		return i, err == nil
	}
	return 0, false
}

// Truthy is how a value acts as a condition: true booleans, non-zero
// numbers, non-empty strings.
func (v Value) Truthy() bool {
	switch v.T {
	case TBool, TInt, TTime:
		return v.I != 0
	case TFloat:
		return v.F != 0
	case TString:
		return v.S != ""
	case TAddr:
		return true
	}
	return false
}

// String returns the text of v as Logs Insights shows it; "" for null.
func (v Value) String() string { return string(v.Append(nil)) }

// Append appends the text of v.
func (v Value) Append(dst []byte) []byte {
	switch v.T {
	case TBool:
		return strconv.AppendBool(dst, v.I != 0)
	case TInt:
		return strconv.AppendInt(dst, v.I, 10)
	case TFloat:
		return appendFloat(dst, v.F)
	case TString:
		return append(dst, v.S...)
	case TTime:
		return appendTime(dst, v.I)
	case TAddr:
		return v.A.AppendTo(dst)
	}
	return dst
}

func appendFloat(dst []byte, f float64) []byte {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.AppendInt(dst, int64(f), 10)
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

// TimeLayout is how timestamps print, as in the Logs Insights console.
const TimeLayout = "2006-01-02 15:04:05.000"

func appendTime(dst []byte, ms int64) []byte {
	return time.UnixMilli(ms).UTC().AppendFormat(dst, TimeLayout)
}

// compare orders two non-null values: numbers numerically (a string that
// holds a number counts as one), everything else by its text. ok is false
// when either is null.
func compare(a, b Value) (c int, ok bool) {
	if a.T == TNull || b.T == TNull {
		return 0, false
	}
	if a.T == TAddr && b.T == TAddr {
		return a.A.Compare(b.A), true
	}
	if a.T == TString && b.T == TString {
		return strings.Compare(a.S, b.S), true
	}
	if a.T.numeric() && b.T.numeric() {
		if a.T != TFloat && b.T != TFloat {
			return cmpInt(a.I, b.I), true
		}
		x, _ := a.Float()
		y, _ := b.Float()
		return cmpFloat(x, y), true
	}
	if a.T.numeric() || b.T.numeric() {
		if x, okx := a.Float(); okx {
			if y, oky := b.Float(); oky {
				return cmpFloat(x, y), true
			}
		}
	}
	return strings.Compare(a.String(), b.String()), true
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
