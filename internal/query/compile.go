package query

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/suggest"
)

// Error is a query error that is not a syntax error: an unknown function,
// a wrong argument, a field that does not exist after stats. It names the
// position in the query.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

func errorf(p Pos, format string, args ...any) *Error {
	return &Error{Pos: p, Msg: fmt.Sprintf(format, args...)}
}

// node is a compiled expression. eval computes it for the selected rows of
// a frame into the worker's vector for the node's id and returns it (or a
// vector it does not own, for constants and fields).
type node interface {
	typ() Type
	eval(w *wctx, f *frame) *Vec
}

// slot is a column of the frame: computed by fields or parse, or a column
// of the input table.
type slot struct {
	name string
	t    Type
}

// env resolves names while compiling one pipeline.
type env struct {
	stream bool   // names resolve to flow log fields and @-fields
	slots  []slot // frame columns, in order of definition
	nodes  int    // node ids handed out
	warn   func(string)
	reads  *fieldReads // the flow log fields a stream pipeline reads
}

// fieldReads collects the flow log fields a stream pipeline reads, so that
// the decoder locates only those (flowlog.Scanner.Fields).
type fieldReads struct {
	fields []flowlog.Field
	all    bool // a field known only by a header line's name: every field
}

func (r *fieldReads) add(f flowlog.Field) {
	if r == nil {
		return
	}
	if f == flowlog.FieldUnknown {
		r.all = true
		return
	}
	r.fields = append(r.fields, f)
}

// list returns the fields for flowlog.Scanner.Fields: nil for every field.
func (r *fieldReads) list() []flowlog.Field {
	if r == nil || r.all {
		return nil
	}
	if r.fields == nil {
		return []flowlog.Field{} // none: whole lines only
	}
	return r.fields
}

func (e *env) id() int { e.nodes++; return e.nodes - 1 }

// addSlot defines (or redefines) a frame column.
func (e *env) addSlot(name string, t Type) int {
	for i := range e.slots {
		if strings.EqualFold(e.slots[i].name, name) {
			e.slots[i].t = t
			return i
		}
	}
	e.slots = append(e.slots, slot{name, t})
	return len(e.slots) - 1
}

func (e *env) findSlot(name string) int {
	for i := range e.slots {
		if e.slots[i].name == name {
			return i
		}
	}
	for i := range e.slots {
		if strings.EqualFold(e.slots[i].name, name) {
			return i
		}
	}
	return -1
}

// Pseudo-fields of every record.
const (
	pseudoTimestamp = iota
	pseudoMessage
	pseudoLogStream
	pseudoLog
	pseudoIngestion
)

var pseudoNames = map[string]int{
	"@timestamp":     pseudoTimestamp,
	"@message":       pseudoMessage,
	"@logstream":     pseudoLogStream,
	"@log":           pseudoLog,
	"@ingestiontime": pseudoIngestion,
}

// resolve compiles a field name.
func (e *env) resolve(ref *FieldRef) (node, error) {
	name := ref.Name
	if s := e.findSlot(name); s >= 0 {
		return &slotRef{slot: s, t: e.slots[s].t}, nil
	}
	if !e.stream {
		// After stats: Insights names columns count(), sum(bytes)…;
		// users write `count` for `count()`.
		lname := strings.ToLower(name)
		match := -1
		for i, s := range e.slots {
			ls := strings.ToLower(s.name)
			if strings.HasPrefix(ls, lname+"(") {
				if match >= 0 {
					return nil, errorf(ref.P, "%s is ambiguous: it could be %s or %s", name, e.slots[match].name, s.name)
				}
				match = i
			}
		}
		if match >= 0 {
			return &slotRef{slot: match, t: e.slots[match].t}, nil
		}
		var names []string
		for _, s := range e.slots {
			if !isHidden(s.name) {
				names = append(names, s.name)
			}
		}
		if s := suggest.Closest(name, names); s != "" {
			return nil, errorf(ref.P, "no column %s here (did you mean %s?); the columns are %s", name, s, e.columnList())
		}
		return nil, errorf(ref.P, "no column %s here; the columns are %s", name, e.columnList())
	}
	if strings.HasPrefix(name, "@") {
		p, ok := pseudoNames[strings.ToLower(name)]
		if !ok {
			return nil, errorf(ref.P, "unknown field %s (known: @timestamp, @message, @logStream, @log, @ingestionTime)", name)
		}
		t := TString
		if p == pseudoTimestamp || p == pseudoIngestion {
			t = TTime
		}
		switch p {
		case pseudoTimestamp, pseudoIngestion:
			e.reads.add(flowlog.FieldStart)
		case pseudoLogStream:
			e.reads.add(flowlog.FieldInterfaceID)
		}
		return &pseudoField{id: e.id(), which: p, t: t}, nil
	}
	fld, ok := flowlog.LookupQueryName(name)
	if !ok && e.warn != nil {
		hint := ""
		if s := suggest.Closest(name, append(flowlog.QueryNames(), "@timestamp", "@message", "@logStream", "@log")); s != "" {
			hint = fmt.Sprintf(" (did you mean %s?)", s)
		}
		e.warn(fmt.Sprintf("%s: %s is not a flow log field%s; it is empty unless a header line names it", ref.P, name, hint))
	}
	t := TString
	switch fld.Kind() {
	case flowlog.KindUint:
		t = TInt
	case flowlog.KindAddr:
		t = TAddr
	}
	if !ok {
		fld = flowlog.FieldUnknown
	}
	e.reads.add(fld)
	return &batchField{id: e.id(), field: fld, name: name, t: t}, nil
}

func (e *env) columnList() string {
	var names []string
	for _, s := range e.slots {
		if !isHidden(s.name) {
			names = append(names, s.name)
		}
	}
	if len(names) == 0 {
		return "(no column but the aggregates of stats: an expression in stats may only combine aggregates and constants)"
	}
	return strings.Join(names, ", ")
}

// compile compiles an expression that is not an aggregate.
func (e *env) compile(x Expr) (node, error) {
	switch x := x.(type) {
	case *FieldRef:
		return e.resolve(x)
	case *NumberLit:
		if x.IsInt {
			return &constNode{v: constVec(IntValue(x.Int))}, nil
		}
		return &constNode{v: constVec(FloatValue(x.Float))}, nil
	case *StringLit:
		return &constNode{v: constVec(StringValue(x.Value))}, nil
	case *BoolLit:
		return &constNode{v: constVec(BoolValue(x.Value))}, nil
	case *DurationLit:
		return nil, errorf(x.P, "a time period such as %s is only an argument of bin, datefloor or dateceil", x.Text)
	case *RegexLit:
		return nil, errorf(x.P, "a regular expression is only the right side of like, not like or =~")
	case *UnaryExpr:
		arg, err := e.compile(x.X)
		if err != nil {
			return nil, err
		}
		if x.Op == "not" {
			return &notNode{id: e.id(), x: arg}, nil
		}
		if !arg.typ().numeric() && arg.typ() != TString && arg.typ() != TNull {
			return nil, errorf(x.P, "cannot negate a %s", arg.typ())
		}
		return &arithNode{id: e.id(), op: "-", l: &constNode{v: constVec(IntValue(0))}, r: arg, t: numType(TInt, arg.typ(), "-")}, nil
	case *BinaryExpr:
		return e.compileBinary(x)
	case *InExpr:
		arg, err := e.compile(x.X)
		if err != nil {
			return nil, err
		}
		vals := make([]Value, 0, len(x.List))
		for _, it := range x.List {
			c, err := e.compile(it)
			if err != nil {
				return nil, err
			}
			k, ok := c.(*constNode)
			if !ok {
				return nil, errorf(it.Position(), "the list of in holds constants only")
			}
			vals = append(vals, k.v.Value(0))
		}
		return &inNode{id: e.id(), x: arg, list: vals, not: x.Not}, nil
	case *CallExpr:
		if isAggregate(x.Name) {
			return nil, errorf(x.P, "%s() is an aggregate: it belongs in stats", x.Name)
		}
		return e.compileCall(x)
	}
	return nil, errorf(x.Position(), "unsupported expression %s", x)
}

func (e *env) compileBinary(x *BinaryExpr) (node, error) {
	switch x.Op {
	case "like", "notlike", "=~":
		l, err := e.compile(x.L)
		if err != nil {
			return nil, err
		}
		var re *regexp.Regexp
		switch r := x.R.(type) {
		case *RegexLit:
			re, err = regexp.Compile(r.Pattern)
			if err != nil {
				return nil, errorf(r.P, "bad regular expression: %v", err)
			}
		case *StringLit:
			// like "text" matches text anywhere in the value.
			if re, err = regexp.Compile(regexp.QuoteMeta(r.Value)); err != nil {
				return nil, errorf(r.P, "bad string to match: %v", err)
			}
		default:
			return nil, errorf(x.R.Position(), "%s needs a /regex/ or a \"string\" on its right", x.Op)
		}
		return &matchNode{id: e.id(), x: l, re: re, not: x.Op == "notlike"}, nil
	}
	l, err := e.compile(x.L)
	if err != nil {
		return nil, err
	}
	r, err := e.compile(x.R)
	if err != nil {
		return nil, err
	}
	switch x.Op {
	case "and", "or":
		return &logicNode{id: e.id(), and: x.Op == "and", l: l, r: r}, nil
	case "=", "!=", "<", "<=", ">", ">=":
		return e.compileCompare(x.Op, l, r), nil
	case "+", "-", "*", "/", "%", "^":
		for _, s := range []node{l, r} {
			if t := s.typ(); t == TAddr || t == TBool {
				return nil, errorf(x.P, "%s needs numbers, not a %s", x.Op, t)
			}
		}
		return &arithNode{id: e.id(), op: x.Op, l: l, r: r, t: numType(l.typ(), r.typ(), x.Op)}, nil
	}
	return nil, errorf(x.P, "unknown operator %s", x.Op)
}

// numType is the result type of arithmetic.
func numType(a, b Type, op string) Type {
	switch {
	case op == "/" || op == "^":
		return TFloat
	case a == TTime && b == TTime && op == "-":
		return TInt
	case (a == TTime || b == TTime) && (op == "+" || op == "-"):
		return TTime
	case (a == TInt || a == TTime) && (b == TInt || b == TTime):
		return TInt
	}
	return TFloat
}

func (e *env) compileCompare(op string, l, r node) node {
	// Put a constant on the right.
	if _, ok := l.(*constNode); ok {
		if _, ok := r.(*constNode); !ok {
			l, r = r, l
			op = flipOp(op)
		}
	}
	if k, ok := r.(*constNode); ok && k.v.T == TString {
		s := k.v.S[0]
		switch l.typ() {
		case TAddr:
			// srcaddr = "10.0.0.1": compare addresses.
			if a, err := netip.ParseAddr(s); err == nil {
				r = &constNode{v: constVec(AddrValue(a))}
			}
		case TInt, TFloat, TTime:
			if v := StringValue(s); true {
				if n, ok := v.Int(); ok {
					r = &constNode{v: constVec(IntValue(n))}
				} else if f, ok := v.Float(); ok {
					r = &constNode{v: constVec(FloatValue(f))}
				}
			}
		}
		if bf, ok := l.(*batchField); ok && (op == "=" || op == "!=") {
			switch bf.field.Kind() {
			case flowlog.KindAction, flowlog.KindLogStatus:
				return &enumEq{id: e.id(), f: bf, want: s, not: op == "!="}
			}
		}
	}
	return &cmpNode{id: e.id(), op: op, l: l, r: r}
}

func flipOp(op string) string {
	switch op {
	case "<":
		return ">"
	case "<=":
		return ">="
	case ">":
		return "<"
	case ">=":
		return "<="
	}
	return op
}
