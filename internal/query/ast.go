// Package query implements the CloudWatch Logs Insights query language
// (Logs Insights QL) over flow-log batches: lexer, parser and AST (this
// file, lexer.go, parser.go) and the executor.
//
// Every node records its position (1-based line and column, columns counted
// in characters) so that later stages can report errors where they are. The
// String method of every node prints valid query text: Parse(q.String())
// gives back the same tree, positions aside.
package query

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Pos is a position in the query text: 1-based line and column. Columns
// count characters (runes), not bytes; a tab counts as one.
type Pos struct{ Line, Col int }

// String formats the position as "line L, column C".
func (p Pos) String() string {
	return "line " + strconv.Itoa(p.Line) + ", column " + strconv.Itoa(p.Col)
}

// Query is a parsed query: its commands in pipeline order.
type Query struct{ Commands []Command }

// String prints the query as one line, commands separated by " | ".
func (q *Query) String() string {
	var b strings.Builder
	for i, c := range q.Commands {
		if i > 0 {
			b.WriteString(" | ")
		}
		b.WriteString(c.String())
	}
	return b.String()
}

// Command is one command of the pipeline: *FieldsCmd, *DisplayCmd,
// *FilterCmd, *StatsCmd, *SortCmd, *LimitCmd, *DedupCmd or *ParseCmd.
type Command interface {
	// Position is where the command's keyword is.
	Position() Pos
	// String prints the command as query text.
	String() string
}

// FieldsCmd is `fields a, b as c, concat(a, "x") as d`.
type FieldsCmd struct {
	P     Pos
	Items []Projection
}

// DisplayCmd is `display a, b`.
type DisplayCmd struct {
	P     Pos
	Items []Projection
}

// FilterCmd is `filter <expr>`.
type FilterCmd struct {
	P    Pos
	Cond Expr
}

// StatsCmd is `stats agg [as name], ... [by expr [as name], ...]`.
type StatsCmd struct {
	P    Pos
	Aggs []Projection
	By   []Projection
}

// SortCmd is `sort expr [asc|desc], ...`.
type SortCmd struct {
	P    Pos
	Keys []SortKey
}

// LimitCmd is `limit N`, N >= 1.
type LimitCmd struct {
	P   Pos
	N   int
	Any bool // limit any N
}

// DedupCmd is `dedup a, b`. AWS allows only `limit` after it; the parser
// enforces that.
type DedupCmd struct {
	P      Pos
	Fields []*FieldRef
}

// ParseCmd is `parse [field] "glob * glob" as a, b` (IsRegex false, Glob set,
// Names from the aliases, one per `*`) or `parse [field] /regex/` (IsRegex
// true, Regex set, Names from the regex's named groups `(?<name>...)`, in
// order). Source is the field parsed; the parser sets it to @message when the
// query leaves it out.
type ParseCmd struct {
	P       Pos
	Source  Expr
	Glob    string
	Regex   string
	IsRegex bool
	Names   []string
}

// Projection is one item of fields, display, stats or stats ... by: an
// expression and an optional alias.
type Projection struct {
	Expr  Expr
	Alias string // "" if none

	// Text is the expression's source text as the user wrote it, with
	// whitespace and comments between tokens collapsed to one space. The
	// parser sets it; Name uses it. It is presentation only: two
	// projections with the same Expr and Alias are the same projection.
	Text string
}

// Name is the output column name, as Insights names it: the alias if there
// is one, the field's name for a bare field (without backticks), and
// otherwise the expression's source text as written (`count(*)`,
// `count()`, `sum(bytes)`, `bin(5m)`). Without source text (a tree built in
// code) it is the expression's canonical String.
func (p Projection) Name() string {
	if p.Alias != "" {
		return p.Alias
	}
	if f, ok := p.Expr.(*FieldRef); ok {
		return f.Name
	}
	if p.Text != "" {
		return p.Text
	}
	if p.Expr == nil {
		return ""
	}
	return p.Expr.String()
}

// String prints the projection as query text: `expr` or `expr as alias`.
func (p Projection) String() string {
	s := exprString(p.Expr)
	if p.Alias != "" {
		s += " as " + quoteName(p.Alias, false)
	}
	return s
}

// SortKey is one key of a sort command. Desc is false for ascending.
type SortKey struct {
	Expr Expr
	Desc bool
}

// String prints the key with an explicit direction: `expr asc` or
// `expr desc`.
func (k SortKey) String() string {
	if k.Desc {
		return exprString(k.Expr) + " desc"
	}
	return exprString(k.Expr) + " asc"
}

// Expr is an expression node: *FieldRef, *NumberLit, *StringLit, *RegexLit,
// *DurationLit, *BoolLit, *CallExpr, *UnaryExpr, *BinaryExpr or *InExpr.
type Expr interface {
	// Position is where the node is; for operators, where the operator is.
	Position() Pos
	// String prints the expression as query text, with the parentheses
	// that precedence needs and no others.
	String() string
}

// FieldRef names a log field: srcaddr, @timestamp, or a name in backticks
// such as `log-status` (then Quoted is true and Name has no backticks).
type FieldRef struct {
	P      Pos
	Name   string
	Quoted bool
}

// NumberLit is a number: an integer (IsInt, Int) or a float (Float). Text is
// the literal as written. Float is set for integers too.
type NumberLit struct {
	P     Pos
	Text  string
	IsInt bool
	Int   int64
	Float float64
}

// StringLit is a string in single or double quotes, escapes decoded.
type StringLit struct {
	P     Pos
	Value string
}

// RegexLit is a regular expression between slashes, `/.../`. Pattern is the
// text between the slashes with `\/` turned into `/`; other backslash
// sequences are kept as written. Flags go inside, as `(?i)`.
type RegexLit struct {
	P       Pos
	Pattern string
}

// DurationLit is a time period for bin, datefloor and dateceil: `5m`, `1h`,
// `100ms`, `2hrs`. Text is as written; Unit is canonical: ms s m h d w mo q
// y.
type DurationLit struct {
	P    Pos
	Text string
	N    int64
	Unit string
}

// BoolLit is `true` or `false`.
type BoolLit struct {
	P     Pos
	Value bool
}

// CallExpr is a function call `name(args)`. Name is lower-cased. Star is set
// for `count(*)` (then Args is empty); `count()` has neither. The parser
// accepts `*` only for count; it does not check names or arities.
type CallExpr struct {
	P    Pos
	Name string
	Args []Expr
	Star bool
}

// UnaryExpr is `not X` or `-X`.
type UnaryExpr struct {
	P  Pos
	Op string // "not", "-"
	X  Expr
}

// BinaryExpr is `L op R`. Op is one of: or and = != < <= > >= + - * / % ^
// like notlike =~. P is the operator's position (for notlike, of `not`).
type BinaryExpr struct {
	P    Pos
	Op   string
	L, R Expr
}

// InExpr is `X in [a, b]` or `X not in [a, b]`. P is the position of `in`
// (of `not` for not in).
type InExpr struct {
	P    Pos
	X    Expr
	List []Expr
	Not  bool
}

// Position implementations.

// Position implements Command.
func (c *FieldsCmd) Position() Pos { return c.P }

// Position implements Command.
func (c *DisplayCmd) Position() Pos { return c.P }

// Position implements Command.
func (c *FilterCmd) Position() Pos { return c.P }

// Position implements Command.
func (c *StatsCmd) Position() Pos { return c.P }

// Position implements Command.
func (c *SortCmd) Position() Pos { return c.P }

// Position implements Command.
func (c *LimitCmd) Position() Pos { return c.P }

// Position implements Command.
func (c *DedupCmd) Position() Pos { return c.P }

// Position implements Command.
func (c *ParseCmd) Position() Pos { return c.P }

// Position implements Expr.
func (e *FieldRef) Position() Pos { return e.P }

// Position implements Expr.
func (e *NumberLit) Position() Pos { return e.P }

// Position implements Expr.
func (e *StringLit) Position() Pos { return e.P }

// Position implements Expr.
func (e *RegexLit) Position() Pos { return e.P }

// Position implements Expr.
func (e *DurationLit) Position() Pos { return e.P }

// Position implements Expr.
func (e *BoolLit) Position() Pos { return e.P }

// Position implements Expr.
func (e *CallExpr) Position() Pos { return e.P }

// Position implements Expr.
func (e *UnaryExpr) Position() Pos { return e.P }

// Position implements Expr.
func (e *BinaryExpr) Position() Pos { return e.P }

// Position implements Expr.
func (e *InExpr) Position() Pos { return e.P }

// Command printing.

func projections(items []Projection) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = it.String()
	}
	return strings.Join(parts, ", ")
}

// String implements Command.
func (c *FieldsCmd) String() string { return "fields " + projections(c.Items) }

// String implements Command.
func (c *DisplayCmd) String() string { return "display " + projections(c.Items) }

// String implements Command.
func (c *FilterCmd) String() string { return "filter " + exprString(c.Cond) }

// String implements Command.
func (c *StatsCmd) String() string {
	s := "stats " + projections(c.Aggs)
	if len(c.By) > 0 {
		s += " by " + projections(c.By)
	}
	return s
}

// String implements Command.
func (c *SortCmd) String() string {
	parts := make([]string, len(c.Keys))
	for i, k := range c.Keys {
		parts[i] = k.String()
	}
	return "sort " + strings.Join(parts, ", ")
}

// String implements Command.
func (c *LimitCmd) String() string {
	if c.Any {
		return "limit any " + strconv.Itoa(c.N)
	}
	return "limit " + strconv.Itoa(c.N)
}

// String implements Command.
func (c *DedupCmd) String() string {
	parts := make([]string, len(c.Fields))
	for i, f := range c.Fields {
		parts[i] = exprString(f)
	}
	return "dedup " + strings.Join(parts, ", ")
}

// String implements Command.
func (c *ParseCmd) String() string {
	var b strings.Builder
	b.WriteString("parse ")
	if c.Source != nil {
		b.WriteString(exprString(c.Source))
		b.WriteByte(' ')
	}
	if c.IsRegex {
		b.WriteString(regexString(c.Regex))
		return b.String()
	}
	b.WriteString(quoteString(c.Glob))
	if len(c.Names) > 0 {
		b.WriteString(" as ")
		for i, n := range c.Names {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteName(n, false))
		}
	}
	return b.String()
}

// Expression printing.

// Precedence levels, lowest first. An operand is parenthesised when its
// level is below what its position needs.
const (
	precOr = iota + 1
	precAnd
	precNot
	precCmp // = != < <= > >= like, not like, =~, in, not in
	precAdd // + -
	precMul // * / %
	precNeg // unary -
	precPow // ^
	precPrimary
)

func binaryPrec(op string) int {
	switch op {
	case "or":
		return precOr
	case "and":
		return precAnd
	case "+", "-":
		return precAdd
	case "*", "/", "%":
		return precMul
	case "^":
		return precPow
	default:
		return precCmp
	}
}

func exprPrec(e Expr) int {
	switch e := e.(type) {
	case *BinaryExpr:
		return binaryPrec(e.Op)
	case *InExpr:
		return precCmp
	case *UnaryExpr:
		if e.Op == "not" {
			return precNot
		}
		return precNeg
	default:
		return precPrimary
	}
}

func exprString(e Expr) string {
	if e == nil {
		return "<nil>"
	}
	return e.String()
}

// operand prints e, in parentheses if its level is below min.
func operand(e Expr, min int) string {
	if e != nil && exprPrec(e) < min {
		return "(" + e.String() + ")"
	}
	return exprString(e)
}

// String implements Expr.
func (e *FieldRef) String() string { return quoteName(e.Name, e.Quoted) }

// String implements Expr.
func (e *NumberLit) String() string {
	if e.Text != "" {
		return e.Text
	}
	if e.IsInt {
		return strconv.FormatInt(e.Int, 10)
	}
	return strconv.FormatFloat(e.Float, 'g', -1, 64)
}

// String implements Expr.
func (e *StringLit) String() string { return quoteString(e.Value) }

// String implements Expr.
func (e *RegexLit) String() string { return regexString(e.Pattern) }

// String implements Expr.
func (e *DurationLit) String() string {
	if e.Text != "" {
		return e.Text
	}
	return strconv.FormatInt(e.N, 10) + e.Unit
}

// String implements Expr.
func (e *BoolLit) String() string {
	if e.Value {
		return "true"
	}
	return "false"
}

// String implements Expr.
func (e *CallExpr) String() string {
	var b strings.Builder
	b.WriteString(e.Name)
	b.WriteByte('(')
	if e.Star {
		b.WriteByte('*')
	}
	for i, a := range e.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(exprString(a))
	}
	b.WriteByte(')')
	return b.String()
}

// String implements Expr.
func (e *UnaryExpr) String() string {
	if e.Op == "not" {
		return "not " + operand(e.X, precNot)
	}
	x := operand(e.X, precNeg)
	if strings.HasPrefix(x, "-") {
		// "- -x", not "--x": keep the two operators apart for readers.
		return e.Op + " " + x
	}
	return e.Op + x
}

// String implements Expr.
func (e *BinaryExpr) String() string {
	p := binaryPrec(e.Op)
	var l, r string
	if e.Op == "^" { // right-associative; its right side may be a unary minus
		l, r = operand(e.L, p+1), operand(e.R, precNeg)
	} else {
		l, r = operand(e.L, p), operand(e.R, p+1)
	}
	op := e.Op
	if op == "notlike" {
		op = "not like"
	}
	return l + " " + op + " " + r
}

// String implements Expr.
func (e *InExpr) String() string {
	var b strings.Builder
	b.WriteString(operand(e.X, precCmp))
	if e.Not {
		b.WriteString(" not in [")
	} else {
		b.WriteString(" in [")
	}
	for i, x := range e.List {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(exprString(x))
	}
	b.WriteByte(']')
	return b.String()
}

// Walk calls fn for e and, while fn returns true, for each of its
// sub-expressions, depth first, left to right.
func Walk(e Expr, fn func(Expr) bool) {
	if e == nil || !fn(e) {
		return
	}
	switch e := e.(type) {
	case *CallExpr:
		for _, a := range e.Args {
			Walk(a, fn)
		}
	case *UnaryExpr:
		Walk(e.X, fn)
	case *BinaryExpr:
		Walk(e.L, fn)
		Walk(e.R, fn)
	case *InExpr:
		Walk(e.X, fn)
		for _, x := range e.List {
			Walk(x, fn)
		}
	}
}

// Quoting helpers.

// keywords are reserved: a field with one of these names must be written in
// backticks.
var keywords = map[string]bool{
	"and": true, "or": true, "not": true, "like": true, "in": true,
	"as": true, "by": true, "true": true, "false": true,
}

func isKeyword(s string) bool {
	if len(s) > 5 {
		return false
	}
	return keywords[strings.ToLower(s)]
}

func isIdentStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }

func isIdentPart(r rune) bool {
	return r == '_' || r == '.' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// isPlainName reports whether s can be written without backticks: an
// optional @, a letter or _, then letters, digits, _ and dots, and not a
// keyword.
func isPlainName(s string) bool {
	t := strings.TrimPrefix(s, "@")
	if t == "" || isKeyword(s) {
		return false
	}
	for i, r := range t {
		if r == utf8.RuneError {
			return false
		}
		if i == 0 && !isIdentStart(r) || i > 0 && !isIdentPart(r) {
			return false
		}
	}
	return true
}

// quoteName prints a field name or alias: as is when it can be, else in
// backticks. Names that contain a backtick cannot be written at all; they
// only come from trees built in code, and are printed as well as possible.
func quoteName(name string, quoted bool) string {
	if !quoted && isPlainName(name) {
		return name
	}
	return "`" + name + "`"
}

// quoteString prints s as a double-quoted string literal that the lexer
// reads back as s.
func quoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// regexString prints a pattern between slashes, escaping bare slashes. A
// backslash and the character after it are copied as a pair, as the lexer
// reads them.
func regexString(p string) string {
	var b strings.Builder
	b.Grow(len(p) + 2)
	b.WriteByte('/')
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p) && p[i+1] != '/':
			b.WriteByte(c)
			b.WriteByte(p[i+1])
			i++
		case c == '\\':
			// A trailing backslash, or one before '/', cannot come from the
			// lexer; write it escaped so the text stays a valid literal.
			b.WriteString(`\\`)
		case c == '/':
			b.WriteString(`\/`)
		case c == '\n': // the lexer ends a regex at a line break
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('/')
	return b.String()
}
