package query

import (
	"math"
	"net/netip"
	"strings"
	"time"
)

// scalarFunc is a function of the Logs Insights language, evaluated row by
// row on Values. Hot functions have vectorised nodes as well (subnetNode).
type scalarFunc struct {
	min, max int                      // arity; max -1 for any
	result   func(args []node) Type   // result type from argument types
	fn       func(args []Value) Value // nulls in, usually null out
}

func fixed(t Type) func([]node) Type { return func([]node) Type { return t } }

func firstType(args []node) Type {
	for _, a := range args {
		if t := a.typ(); t != TNull {
			return t
		}
	}
	return TNull
}

// commonType is the type that holds every argument's values: their type
// if they agree, a number if they are all numbers, else a string.
func commonType(args []node) Type {
	t := TNull
	for _, a := range args {
		at := a.typ()
		switch {
		case at == TNull || at == t:
		case t == TNull:
			t = at
		case t.numeric() && at.numeric():
			t = TFloat
		default:
			return TString
		}
	}
	return t
}

func valueText(v Value) string { return v.String() }

var scalarFuncs = map[string]scalarFunc{
	// Strings.
	"strlen": {1, 1, fixed(TInt), func(a []Value) Value { return IntValue(int64(len([]rune(valueText(a[0]))))) }},
	"concat": {1, -1, fixed(TString), func(a []Value) Value {
		var b strings.Builder
		for _, v := range a {
			b.WriteString(valueText(v))
		}
		return StringValue(b.String())
	}},
	"substr": {2, 3, fixed(TString), func(a []Value) Value {
		r := []rune(valueText(a[0]))
		start, ok := a[1].Int()
		if !ok || start < 0 {
			return Null
		}
		if int(start) >= len(r) {
			return StringValue("")
		}
		end := int64(len(r))
		if len(a) == 3 {
			n, ok := a[2].Int()
			if !ok || n < 0 {
				return Null
			}
			end = min(end, start+n)
		}
		return StringValue(string(r[start:end]))
	}},
	"replace": {3, 3, fixed(TString), func(a []Value) Value {
		return StringValue(strings.ReplaceAll(valueText(a[0]), valueText(a[1]), valueText(a[2])))
	}},
	"strcontains": {2, 2, fixed(TBool), func(a []Value) Value { return BoolValue(strings.Contains(valueText(a[0]), valueText(a[1]))) }},
	"toupper":     {1, 1, fixed(TString), func(a []Value) Value { return StringValue(strings.ToUpper(valueText(a[0]))) }},
	"tolower":     {1, 1, fixed(TString), func(a []Value) Value { return StringValue(strings.ToLower(valueText(a[0]))) }},
	"trim":        {1, 2, fixed(TString), trimFunc(strings.Trim, strings.TrimSpace)},
	"ltrim":       {1, 2, fixed(TString), trimFunc(strings.TrimLeft, func(s string) string { return strings.TrimLeft(s, " \t\r\n") })},
	"rtrim":       {1, 2, fixed(TString), trimFunc(strings.TrimRight, func(s string) string { return strings.TrimRight(s, " \t\r\n") })},
	// Presence.
	"isempty":   {1, 1, fixed(TBool), nil},
	"isblank":   {1, 1, fixed(TBool), nil},
	"ispresent": {1, 1, fixed(TBool), nil},
	"coalesce":  {1, -1, commonType, nil},
	// Numbers.
	"abs": {1, 1, firstType, func(a []Value) Value {
		if a[0].T == TInt {
			return IntValue(max(a[0].I, -a[0].I))
		}
		return floatFn(math.Abs)(a)
	}},
	"ceil":     {1, 1, fixed(TInt), intOfFloat(math.Ceil)},
	"floor":    {1, 1, fixed(TInt), intOfFloat(math.Floor)},
	"log":      {1, 1, fixed(TFloat), floatFn(math.Log)},
	"sqrt":     {1, 1, fixed(TFloat), floatFn(math.Sqrt)},
	"greatest": {1, -1, commonType, extreme(1)},
	"least":    {1, -1, commonType, extreme(-1)},
	// Time.
	"frommillis": {1, 1, fixed(TTime), func(a []Value) Value {
		n, ok := a[0].Int()
		if !ok {
			return Null
		}
		return TimeValue(n)
	}},
	"tomillis": {1, 1, fixed(TInt), func(a []Value) Value {
		n, ok := toMillis(a[0])
		if !ok {
			return Null
		}
		return IntValue(n)
	}},
	// Addresses.
	"isvalidip":   {1, 1, fixed(TBool), validIP(0)},
	"isvalidipv4": {1, 1, fixed(TBool), validIP(4)},
	"isvalidipv6": {1, 1, fixed(TBool), validIP(6)},
}

func trimFunc(with func(string, string) string, plain func(string) string) func([]Value) Value {
	return func(a []Value) Value {
		if len(a) == 2 {
			return StringValue(with(valueText(a[0]), valueText(a[1])))
		}
		return StringValue(plain(valueText(a[0])))
	}
}

func floatFn(f func(float64) float64) func([]Value) Value {
	return func(a []Value) Value {
		x, ok := a[0].Float()
		if !ok {
			return Null
		}
		r := f(x)
		if math.IsNaN(r) || math.IsInf(r, 0) {
			return Null
		}
		return FloatValue(r)
	}
}

func intOfFloat(f func(float64) float64) func([]Value) Value {
	return func(a []Value) Value {
		x, ok := a[0].Float()
		if !ok {
			return Null
		}
		return IntValue(int64(f(x)))
	}
}

func extreme(sign int) func([]Value) Value {
	return func(a []Value) Value {
		best := Null
		for _, v := range a {
			if v.IsNull() {
				continue
			}
			if best.IsNull() {
				best = v
				continue
			}
			if c, ok := compare(v, best); ok && c*sign > 0 {
				best = v
			}
		}
		return best
	}
}

func validIP(family int) func([]Value) Value {
	return func(a []Value) Value {
		var ip netip.Addr
		if a[0].T == TAddr {
			ip = a[0].A
		} else {
			var err error
			if ip, err = netip.ParseAddr(valueText(a[0])); err != nil {
				return BoolValue(false)
			}
		}
		switch family {
		case 4:
			return BoolValue(ip.Is4())
		case 6:
			return BoolValue(ip.Is6())
		}
		return BoolValue(ip.IsValid())
	}
}

func toMillis(v Value) (int64, bool) {
	switch v.T {
	case TTime, TInt:
		return v.I, true
	case TFloat:
		return int64(v.F), true
	case TString:
		for _, layout := range []string{TimeLayout, time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02"} {
			if t, err := time.Parse(layout, v.S); err == nil {
				return t.UnixMilli(), true
			}
		}
	}
	return 0, false
}

// period is a time period of bin, datefloor and dateceil.
type period struct {
	ms     int64 // fixed length, or 0 for calendar periods
	months int   // mo, q, y
}

func makePeriod(d *DurationLit) (period, *Error) {
	if d.N <= 0 {
		return period{}, errorf(d.P, "the period %s must be positive", d.Text)
	}
	unit := map[string]int64{"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
	if u, ok := unit[d.Unit]; ok {
		return period{ms: d.N * u}, nil
	}
	months := map[string]int{"mo": 1, "q": 3, "y": 12}
	if m, ok := months[d.Unit]; ok {
		return period{months: int(d.N) * m}, nil
	}
	return period{}, errorf(d.P, "unknown time unit in %s", d.Text)
}

// floor rounds a time in milliseconds down to the period, in UTC.
func (p period) floor(ms int64) int64 {
	if p.ms > 0 {
		return ms - mod(ms, p.ms)
	}
	t := time.UnixMilli(ms).UTC()
	total := t.Year()*12 + int(t.Month()) - 1
	total -= mod64(total, p.months)
	return time.Date(total/12, time.Month(total%12+1), 1, 0, 0, 0, 0, time.UTC).UnixMilli()
}

// ceil rounds up.
func (p period) ceil(ms int64) int64 {
	f := p.floor(ms)
	if f == ms {
		return ms
	}
	if p.ms > 0 {
		return f + p.ms
	}
	t := time.UnixMilli(f).UTC()
	return t.AddDate(0, p.months, 0).UnixMilli()
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

func mod64(a, b int) int {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
