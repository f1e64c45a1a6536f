package query

import (
	"net/netip"
	"strings"
)

// compileCall compiles a call of a scalar function.
func (e *env) compileCall(x *CallExpr) (node, error) {
	if x.Star {
		return nil, errorf(x.P, "only count takes *")
	}
	switch x.Name {
	case "bin":
		if len(x.Args) != 1 {
			return nil, errorf(x.P, "bin takes one time period, as in bin(5m)")
		}
		p, err := e.period(x.Args[0])
		if err != nil {
			return nil, err
		}
		ts, err := e.resolve(&FieldRef{P: x.P, Name: "@timestamp"})
		if err != nil {
			return nil, err
		}
		return &timeRound{id: e.id(), x: ts, p: p}, nil
	case "datefloor", "dateceil":
		if len(x.Args) != 2 {
			return nil, errorf(x.P, "%s takes a timestamp and a time period, as in %s(@timestamp, 1h)", x.Name, x.Name)
		}
		ts, err := e.compile(x.Args[0])
		if err != nil {
			return nil, err
		}
		p, err := e.period(x.Args[1])
		if err != nil {
			return nil, err
		}
		return &timeRound{id: e.id(), x: ts, p: p, ceil: x.Name == "dateceil"}, nil
	case "isipinsubnet", "isipv4insubnet", "isipv6insubnet":
		if len(x.Args) != 2 {
			return nil, errorf(x.P, "%s takes an address and a subnet, as in %s(srcAddr, \"10.0.0.0/8\")", x.Name, x.Name)
		}
		ip, err := e.compile(x.Args[0])
		if err != nil {
			return nil, err
		}
		lit, ok := x.Args[1].(*StringLit)
		if !ok {
			return nil, errorf(x.Args[1].Position(), "the subnet of %s must be a string such as \"10.0.0.0/8\"", x.Name)
		}
		pfx, perr := netip.ParsePrefix(strings.TrimSpace(lit.Value))
		if perr != nil {
			a, aerr := netip.ParseAddr(strings.TrimSpace(lit.Value))
			if aerr != nil {
				return nil, errorf(lit.P, "%q is not a subnet in CIDR notation", lit.Value)
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		fam := map[string]int{"isipv4insubnet": 4, "isipv6insubnet": 6}[x.Name]
		return &subnetNode{id: e.id(), x: ip, prefix: pfx.Masked(), family: fam}, nil
	}
	sf, ok := scalarFuncs[x.Name]
	if !ok {
		if why, known := unsupportedFuncs[x.Name]; known {
			return nil, errorf(x.P, "%s is a Logs Insights function flowguard does not support: %s", x.Name, why)
		}
		return nil, errorf(x.P, "unknown function %s", x.Name)
	}
	if len(x.Args) < sf.min || sf.max >= 0 && len(x.Args) > sf.max {
		want := "any number of"
		switch {
		case sf.min == sf.max:
			want = plural(sf.min)
		case sf.max > 0:
			want = plural(sf.min) + " to " + plural(sf.max)
		}
		return nil, errorf(x.P, "%s takes %s arguments, not %d", x.Name, want, len(x.Args))
	}
	args := make([]node, len(x.Args))
	for i, a := range x.Args {
		n, err := e.compile(a)
		if err != nil {
			return nil, err
		}
		args[i] = n
	}
	return &callNode{id: e.id(), name: x.Name, f: sf, args: args, t: sf.result(args)}, nil
}

func plural(n int) string {
	return [...]string{"no", "one", "two", "three", "four"}[min(n, 4)]
}

func (e *env) period(x Expr) (period, error) {
	d, ok := x.(*DurationLit)
	if !ok {
		return period{}, errorf(x.Position(), "expected a time period such as 5m or 1h")
	}
	p, err := makePeriod(d)
	if err != nil {
		return period{}, err
	}
	return p, nil
}

// callNode calls a scalar function row by row.
type callNode struct {
	id   int
	name string
	f    scalarFunc
	args []node
	t    Type
}

func (n *callNode) typ() Type { return n.t }
func (n *callNode) eval(w *wctx, f *frame) *Vec {
	vecs := make([]*Vec, len(n.args))
	for i, a := range n.args {
		vecs[i] = a.eval(w, f)
	}
	out := w.out(n.id, n.t, f.n)
	vals := make([]Value, len(vecs))
	for _, i := range f.sel {
		anyNull := false
		for k, v := range vecs {
			vals[k] = v.Value(int(i))
			anyNull = anyNull || vals[k].IsNull()
		}
		var r Value
		switch n.name {
		case "ispresent":
			r = BoolValue(!vals[0].IsNull())
		case "isempty":
			r = BoolValue(vals[0].IsNull() || vals[0].String() == "")
		case "isblank":
			r = BoolValue(vals[0].IsNull() || strings.TrimSpace(vals[0].String()) == "")
		case "coalesce":
			r = Null
			for _, v := range vals {
				if !v.IsNull() {
					r = v
					break
				}
			}
		case "concat", "greatest", "least":
			r = n.f.fn(vals)
		default:
			if anyNull {
				r = Null
			} else {
				r = n.f.fn(vals)
			}
		}
		out.set(int(i), conv(r, n.t), &w.valid[n.id], f.n)
	}
	return out
}

// conv converts v to type t for storing in a vector of that type.
func conv(v Value, t Type) Value {
	if v.IsNull() || v.T == t {
		return v
	}
	switch t {
	case TString:
		return StringValue(v.String())
	case TFloat:
		if f, ok := v.Float(); ok {
			return FloatValue(f)
		}
	case TInt, TTime, TBool:
		if i, ok := v.Int(); ok {
			return Value{T: t, I: i}
		}
	case TAddr:
		if a, err := netip.ParseAddr(v.String()); err == nil {
			return AddrValue(a)
		}
	}
	return Null
}

// timeRound is bin(), datefloor() and dateceil().
type timeRound struct {
	id   int
	x    node
	p    period
	ceil bool
}

func (n *timeRound) typ() Type { return TTime }
func (n *timeRound) eval(w *wctx, f *frame) *Vec {
	x := n.x.eval(w, f)
	out := w.out(n.id, TTime, f.n)
	for _, i := range f.sel {
		var ms int64
		if x.T == TTime || x.T == TInt {
			if x.IsNull(int(i)) {
				w.setNull(n.id, out, f.n, int(i))
				continue
			}
			ms = x.I[x.idx(int(i))]
		} else {
			var ok bool
			if ms, ok = toMillis(x.Value(int(i))); !ok {
				w.setNull(n.id, out, f.n, int(i))
				continue
			}
		}
		if n.ceil {
			out.I[i] = n.p.ceil(ms)
		} else {
			out.I[i] = n.p.floor(ms)
		}
	}
	return out
}

// unsupportedFuncs names the functions of AWS's current Logs Insights list
// that flowguard leaves out, with the reason, so that a query copied from
// the console gets a clear error rather than "unknown function".
var unsupportedFuncs = map[string]string{
	"jsonparse":     "flow log records are space-separated fields, not JSON (use parse to take fields out of @message)",
	"jsonstringify": "flow log records are space-separated fields, not JSON",
}
