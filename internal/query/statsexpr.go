package query

import (
	"strconv"
	"strings"
)

// statsPost computes the stats items that are expressions over aggregates,
// such as sum(bytes)/1024/1024: their aggregates are computed as hidden
// columns of the groups, then the expressions over those, and the result
// keeps the columns in the order the query names them.
type statsPost struct {
	nodes int    // node ids of the compiled expressions
	exprs []node // one per expression item
	cols  []int  // per item: the raw column it is (>= 0), or -1-k for exprs[k]
	names []string
	types []Type
}

// hiddenPrefix starts the names of the hidden aggregate columns; no query
// can name them.
const hiddenPrefix = "\x00agg"

func isHidden(name string) bool { return strings.HasPrefix(name, hiddenPrefix) }

// containsAggregate reports whether an expression calls an aggregate.
func containsAggregate(e Expr) bool {
	found := false
	Walk(e, func(x Expr) bool {
		if c, ok := x.(*CallExpr); ok && isAggregate(c.Name) {
			found = true
		}
		return !found
	})
	return found
}

// replaceAggregates returns a copy of e in which every aggregate call is
// replaced by what repl returns for it (the aggregate's arguments are not
// entered: an aggregate inside an aggregate is an error of its own).
func replaceAggregates(e Expr, repl func(*CallExpr) (Expr, error)) (Expr, error) {
	switch x := e.(type) {
	case *CallExpr:
		if isAggregate(x.Name) {
			return repl(x)
		}
		c := *x
		c.Args = make([]Expr, len(x.Args))
		for i, a := range x.Args {
			r, err := replaceAggregates(a, repl)
			if err != nil {
				return nil, err
			}
			c.Args[i] = r
		}
		return &c, nil
	case *UnaryExpr:
		r, err := replaceAggregates(x.X, repl)
		if err != nil {
			return nil, err
		}
		c := *x
		c.X = r
		return &c, nil
	case *BinaryExpr:
		l, err := replaceAggregates(x.L, repl)
		if err != nil {
			return nil, err
		}
		r, err := replaceAggregates(x.R, repl)
		if err != nil {
			return nil, err
		}
		c := *x
		c.L, c.R = l, r
		return &c, nil
	case *InExpr:
		v, err := replaceAggregates(x.X, repl)
		if err != nil {
			return nil, err
		}
		c := *x
		c.X = v
		return &c, nil
	}
	return e, nil
}

// compileStatsItems compiles the aggregate items of a stats command into
// spec.aggs and, when some are expressions over aggregates, spec.post. It
// returns the columns stats produces, in the query's order.
func (c *compiler) compileStatsItems(spec *statsSpec, items []Projection) ([]slot, error) {
	nk := len(spec.by)
	type pending struct {
		x    Expr
		name string
	}
	var exprs []pending
	var cols []int
	for _, it := range items {
		if call, ok := it.Expr.(*CallExpr); ok && isAggregate(call.Name) {
			a, err := c.env.compileAgg(it)
			if err != nil {
				return nil, err
			}
			spec.aggs = append(spec.aggs, a)
			cols = append(cols, nk+len(spec.aggs)-1)
			continue
		}
		if !containsAggregate(it.Expr) {
			return nil, errorf(it.Expr.Position(), "stats needs aggregate functions such as count(), sum(bytes) or avg(packets); %s has none", it.Expr)
		}
		x, err := replaceAggregates(it.Expr, func(call *CallExpr) (Expr, error) {
			name := hiddenPrefix + strconv.Itoa(len(spec.aggs))
			a, err := c.env.compileAgg(Projection{Expr: call, Alias: name})
			if err != nil {
				return nil, err
			}
			spec.aggs = append(spec.aggs, a)
			return &FieldRef{P: call.P, Name: name, Quoted: true}, nil
		})
		if err != nil {
			return nil, err
		}
		exprs = append(exprs, pending{x: x, name: it.Name()})
		cols = append(cols, -len(exprs))
	}
	var raw []slot
	for _, k := range spec.by {
		raw = append(raw, slot{k.name, k.x.typ()})
	}
	for _, a := range spec.aggs {
		raw = append(raw, slot{a.name, a.t})
	}
	out := append([]slot(nil), raw[:nk]...)
	if len(exprs) == 0 {
		return append(out, raw[nk:]...), nil
	}
	// The expressions read the raw columns: keys, then every aggregate.
	post := &statsPost{}
	pe := &env{slots: raw}
	for _, p := range exprs {
		n, err := pe.compile(p.x)
		if err != nil {
			return nil, err
		}
		post.exprs = append(post.exprs, n)
	}
	post.nodes = pe.nodes
	for i := range nk {
		post.cols = append(post.cols, i)
		post.names = append(post.names, raw[i].name)
		post.types = append(post.types, raw[i].t)
	}
	k := 0
	for _, col := range cols {
		post.cols = append(post.cols, col)
		if col >= 0 {
			post.names = append(post.names, raw[col].name)
			post.types = append(post.types, raw[col].t)
		} else {
			post.names = append(post.names, exprs[k].name)
			post.types = append(post.types, post.exprs[k].typ())
			k++
		}
	}
	spec.post = post
	for i := nk; i < len(post.names); i++ {
		out = append(out, slot{post.names[i], post.types[i]})
	}
	return out, nil
}

// finish computes the expression items of a stats result and puts its
// columns in the query's order; the hidden aggregates are left out.
func (s *statsSpec) finish(t *Table) *Table {
	p := s.post
	if p == nil {
		return t
	}
	w := newWctx(p.nodes)
	f := t.frame(w)
	vals := make([]*Vec, len(p.exprs))
	for k, x := range p.exprs {
		vals[k] = x.eval(w, f)
	}
	out := &Table{Names: p.names, Types: p.types, n: t.Len()}
	for _, col := range p.cols {
		if col >= 0 {
			out.cols = append(out.cols, f.slots[col])
		} else {
			out.cols = append(out.cols, vals[-1-col])
		}
	}
	return out
}
