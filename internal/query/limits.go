package query

import (
	"strconv"
	"unicode/utf8"
)

// Bounds on what a query may ask for, so that a hostile or runaway query
// is refused before it runs instead of exhausting memory or the stack.
const (
	// MaxQueryLength is the longest query accepted, in characters: Logs
	// Insights' own bound on a query string (StartQuery's queryString
	// takes at most 10,000 characters).
	MaxQueryLength = 10000
	// maxDepth bounds how deeply expressions nest, counting parentheses,
	// calls, not and unary minus while parsing and every operator of a
	// chain such as a + b + c once parsed: the compiler and the evaluator
	// recurse that deep.
	maxDepth = 200
	// maxExprNodes bounds the operators, calls, fields and literals of the
	// whole query (the constants of an in list count once): each becomes
	// a compiled node with a column of its own per worker.
	maxExprNodes = 1000
)

// checkLength refuses a query longer than MaxQueryLength characters,
// naming the position of the first character past the bound.
func checkLength(src string) error {
	if len(src) <= MaxQueryLength || utf8.RuneCountInString(src) <= MaxQueryLength {
		return nil
	}
	pos := Pos{Line: 1, Col: 1}
	n := 0
	for _, r := range src {
		if n == MaxQueryLength {
			break
		}
		n++
		if r == '\n' {
			pos.Line++
			pos.Col = 1
		} else {
			pos.Col++
		}
	}
	return errAt(pos, "the query is longer than "+strconv.Itoa(MaxQueryLength)+
		" characters (Logs Insights' limit): split it, or use 'in [...]' for long lists of values")
}

// checkSize refuses a parsed query whose expressions nest deeper than
// maxDepth or hold more than maxExprNodes nodes in all.
func checkSize(q *Query) error {
	sz := &sizeCheck{}
	for _, c := range q.Commands {
		var exprs []Expr
		switch c := c.(type) {
		case *FieldsCmd:
			exprs = projExprs(c.Items)
		case *DisplayCmd:
			exprs = projExprs(c.Items)
		case *FilterCmd:
			exprs = []Expr{c.Cond}
		case *StatsCmd:
			exprs = append(projExprs(c.Aggs), projExprs(c.By)...)
		case *SortCmd:
			for _, k := range c.Keys {
				exprs = append(exprs, k.Expr)
			}
		case *ParseCmd:
			exprs = []Expr{c.Source}
		}
		for _, e := range exprs {
			if err := sz.walk(e, 1); err != nil {
				return err
			}
		}
	}
	return nil
}

func projExprs(ps []Projection) []Expr {
	out := make([]Expr, len(ps))
	for i, p := range ps {
		out[i] = p.Expr
	}
	return out
}

type sizeCheck struct{ nodes int }

func (s *sizeCheck) walk(e Expr, depth int) error {
	if e == nil {
		return nil
	}
	if depth > maxDepth {
		return errAt(e.Position(), "expression nested too deeply (more than "+strconv.Itoa(maxDepth)+" levels of operators, calls and parentheses)")
	}
	s.nodes++
	if s.nodes > maxExprNodes {
		return errAt(e.Position(), "the query is too large: more than "+strconv.Itoa(maxExprNodes)+
			" operators, calls, fields and values in its expressions")
	}
	switch e := e.(type) {
	case *CallExpr:
		for _, a := range e.Args {
			if err := s.walk(a, depth+1); err != nil {
				return err
			}
		}
	case *UnaryExpr:
		return s.walk(e.X, depth+1)
	case *BinaryExpr:
		if err := s.walk(e.L, depth+1); err != nil {
			return err
		}
		return s.walk(e.R, depth+1)
	case *InExpr:
		if err := s.walk(e.X, depth+1); err != nil {
			return err
		}
		for _, x := range e.List {
			switch x.(type) {
			case *NumberLit, *StringLit, *BoolLit:
				continue // constants: one list of values
			}
			if err := s.walk(x, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
