package query

import (
	"strconv"
	"strings"
	"unicode"
)

// SyntaxError is a query that cannot be parsed: where, and what was wrong.
type SyntaxError struct {
	Pos Pos
	Msg string
}

// Error formats the error as "line 2, column 14: expected ')' but found 'by'".
func (e *SyntaxError) Error() string { return e.Pos.String() + ": " + e.Msg }

// Commands AWS has that flowguard does not run. They get a clear error
// rather than "unknown command".
var unsupportedCommands = map[string]bool{
	"pattern": true, "diff": true, "anomaly": true, "unmask": true,
	"filterindex": true, "source": true, "unnest": true, "lookup": true,
	"join": true, "addtotals": true,
}

const commandList = "fields, display, filter, stats, sort, limit, dedup or parse"

// Parse parses a Logs Insights query.
//
// Commands are separated by '|' and may span lines; keywords are
// case-insensitive; '#' starts a comment that runs to the end of the line.
// A query with a syntax error returns a *SyntaxError, as does one longer
// than MaxQueryLength characters or whose expressions are too large.
func Parse(src string) (*Query, error) {
	if err := checkLength(src); err != nil {
		return nil, err
	}
	q, err := parseQuery(src)
	if err != nil {
		return nil, err
	}
	if err := checkSize(q); err != nil {
		return nil, err
	}
	if err := checkPlacement(q); err != nil {
		return nil, err
	}
	return q, nil
}

// checkPlacement refuses what Logs Insights refuses about where commands
// go: at most two stats commands, and, when there are two, sort and limit
// only after the second. (That only limit follows dedup is checked while
// parsing.)
func checkPlacement(q *Query) error {
	var stats []*StatsCmd
	for _, c := range q.Commands {
		if s, ok := c.(*StatsCmd); ok {
			stats = append(stats, s)
		}
	}
	if len(stats) > 2 {
		return errAt(stats[2].P, "a query may have at most two stats commands, as in Logs Insights")
	}
	if len(stats) < 2 {
		return nil
	}
	for _, c := range q.Commands {
		if c == Command(stats[1]) {
			break
		}
		switch c.(type) {
		case *SortCmd, *LimitCmd:
			return errAt(c.Position(), "in a query with two stats commands, sort and limit may only come after the second (at "+stats[1].P.String()+"), as in Logs Insights")
		}
	}
	return nil
}

func parseQuery(src string) (*Query, error) {
	p := &parser{lx: newLexer(src)}
	if err := p.next(); err != nil {
		return nil, err
	}
	if p.tok.kind == tEOF {
		return nil, errAt(p.tok.pos, "empty query: expected a command ("+commandList+")")
	}
	q := &Query{}
	dedupAt := Pos{}
	for {
		if dedupAt.Line > 0 && !p.tok.isKw("limit") {
			return nil, errAt(p.tok.pos, "only 'limit' may follow 'dedup' (dedup at "+dedupAt.String()+")")
		}
		cmd, err := p.command()
		if err != nil {
			return nil, err
		}
		if d, ok := cmd.(*DedupCmd); ok {
			dedupAt = d.P
		}
		q.Commands = append(q.Commands, cmd)
		switch p.tok.kind {
		case tEOF:
			return q, nil
		case tPipe:
			if err := p.next(); err != nil {
				return nil, err
			}
			if p.tok.kind == tEOF || p.tok.kind == tPipe {
				return nil, p.expected("a command after '|'")
			}
		default:
			return nil, p.expected("'|' or end of query")
		}
	}
}

// parser is a recursive-descent parser with one token of lookahead.
type parser struct {
	lx    *lexer
	tok   token
	depth int

	recording bool
	rec       []token // tokens consumed while recording
}

// next consumes the current token and reads the one after it.
func (p *parser) next() error {
	if p.recording {
		p.rec = append(p.rec, p.tok)
	}
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

// expected builds the error "expected X but found <current token>".
func (p *parser) expected(what string) *SyntaxError {
	return errAt(p.tok.pos, "expected "+what+" but found "+p.tok.describe())
}

// expect consumes a token of kind k or fails with "expected what".
func (p *parser) expect(k tokKind, what string) (token, error) {
	t := p.tok
	if t.kind != k {
		return t, p.expected(what)
	}
	return t, p.next()
}

// command parses one command, starting at its keyword.
func (p *parser) command() (Command, error) {
	kw := p.tok
	if kw.kind != tIdent {
		return nil, p.expected("a command (" + commandList + ")")
	}
	name := strings.ToLower(kw.text)
	switch name {
	case "fields", "display", "filter", "stats", "sort", "limit", "dedup", "parse":
	default:
		if unsupportedCommands[name] {
			return nil, errAt(kw.pos, "the '"+kw.text+"' command is not supported by flowguard")
		}
		return nil, errAt(kw.pos, "unknown command "+kw.describe()+": expected "+commandList)
	}
	if err := p.next(); err != nil {
		return nil, err
	}
	switch name {
	case "fields":
		items, err := p.projections("fields", false)
		if err != nil {
			return nil, err
		}
		return &FieldsCmd{P: kw.pos, Items: items}, nil
	case "display":
		items, err := p.projections("display", false)
		if err != nil {
			return nil, err
		}
		return &DisplayCmd{P: kw.pos, Items: items}, nil
	case "filter":
		if p.atCommandEnd() {
			return nil, p.expected("a condition after 'filter'")
		}
		cond, err := p.expr()
		if err != nil {
			return nil, err
		}
		return &FilterCmd{P: kw.pos, Cond: cond}, nil
	case "stats":
		return p.stats(kw)
	case "sort":
		return p.sort(kw)
	case "limit":
		return p.limit(kw)
	case "dedup":
		return p.dedup(kw)
	default:
		return p.parse(kw)
	}
}

// atCommandEnd reports whether the current token ends a command.
func (p *parser) atCommandEnd() bool { return p.tok.kind == tEOF || p.tok.kind == tPipe }

// projections parses `expr [as alias], ...`. In stats, a bare `by` ends the
// list.
func (p *parser) projections(cmd string, stopAtBy bool) ([]Projection, error) {
	var items []Projection
	for {
		if p.atCommandEnd() || stopAtBy && p.tok.isKw("by") {
			if len(items) == 0 {
				return nil, p.expected("a field or expression after '" + cmd + "'")
			}
			return nil, p.expected("a field or expression after ','")
		}
		item, err := p.projection()
		if err != nil {
			return nil, err
		}
		items = append(items, item)
		if p.tok.kind != tComma {
			return items, nil
		}
		if err := p.next(); err != nil {
			return nil, err
		}
	}
}

// projection parses `expr [as alias]` and keeps the expression's text.
func (p *parser) projection() (Projection, error) {
	p.recording, p.rec = true, p.rec[:0]
	e, err := p.expr()
	p.recording = false
	if err != nil {
		return Projection{}, err
	}
	item := Projection{Expr: e, Text: joinTokens(p.rec)}
	if p.tok.isKw("as") {
		if err := p.next(); err != nil {
			return Projection{}, err
		}
		name, err := p.name("a name after 'as'")
		if err != nil {
			return Projection{}, err
		}
		item.Alias = name
	}
	return item, nil
}

// joinTokens rebuilds source text from tokens, one space wherever the
// source had whitespace or a comment.
func joinTokens(ts []token) string {
	if len(ts) == 1 {
		return ts[0].text
	}
	var b strings.Builder
	for i, t := range ts {
		if i > 0 && t.space {
			b.WriteByte(' ')
		}
		b.WriteString(t.text)
	}
	return b.String()
}

// name parses a plain or backtick-quoted name that is not a keyword.
func (p *parser) name(what string) (string, error) {
	t := p.tok
	switch {
	case t.kind == tQIdent:
		return t.val, p.next()
	case t.kind == tIdent && !isKeyword(t.text):
		return t.text, p.next()
	}
	return "", p.expected(what)
}

// stats parses `stats aggs [by keys]`.
func (p *parser) stats(kw token) (Command, error) {
	if p.atCommandEnd() || p.tok.isKw("by") {
		return nil, p.expected("an aggregate such as count(*) or sum(bytes) after 'stats'")
	}
	aggs, err := p.projections("stats", true)
	if err != nil {
		return nil, err
	}
	for _, a := range aggs {
		if !hasCall(a.Expr) {
			return nil, errAt(a.Expr.Position(), "stats needs an aggregate function such as count(*) or sum(bytes), not "+strconv.Quote(a.Expr.String()))
		}
	}
	c := &StatsCmd{P: kw.pos, Aggs: aggs}
	if p.tok.isKw("by") {
		if err := p.next(); err != nil {
			return nil, err
		}
		if c.By, err = p.projections("by", false); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func hasCall(e Expr) bool {
	found := false
	Walk(e, func(x Expr) bool {
		if _, ok := x.(*CallExpr); ok {
			found = true
		}
		return !found
	})
	return found
}

// sort parses `sort expr [asc|desc], ...`.
//
// AWS documents asc and desc but not which one a key without either gets.
// Like moto's Logs Insights emulator we take descending, the order Insights
// shows results in when a query has no sort at all (newest first). String
// always prints the direction, so printed queries do not depend on this.
func (p *parser) sort(kw token) (Command, error) {
	c := &SortCmd{P: kw.pos}
	for {
		if p.atCommandEnd() {
			if len(c.Keys) == 0 {
				return nil, p.expected("a field to sort by after 'sort'")
			}
			return nil, p.expected("a field to sort by after ','")
		}
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		k := SortKey{Expr: e, Desc: true}
		switch {
		case p.tok.isKw("asc"):
			k.Desc = false
			err = p.next()
		case p.tok.isKw("desc"):
			err = p.next()
		}
		if err != nil {
			return nil, err
		}
		c.Keys = append(c.Keys, k)
		if p.tok.kind != tComma {
			return c, nil
		}
		if err := p.next(); err != nil {
			return nil, err
		}
	}
}

// limit parses `limit N`.
func (p *parser) limit(kw token) (Command, error) {
	// `limit any N`: stop as soon as N rows are found, in no particular
	// order. flowguard stops early for every limit that no sort precedes,
	// and keeps input order, so it is accepted as a plain limit.
	anyN := false
	if p.tok.isKw("any") {
		anyN = true
		if err := p.next(); err != nil {
			return nil, err
		}
	}
	t := p.tok
	if t.kind != tNumber {
		return nil, p.expected("a whole number after 'limit'")
	}
	n, err := strconv.ParseInt(t.text, 10, 64)
	if err != nil || n < 1 || int64(int(n)) != n {
		return nil, errAt(t.pos, "limit must be a whole number of at least 1, not "+t.describe())
	}
	if err := p.next(); err != nil {
		return nil, err
	}
	return &LimitCmd{P: kw.pos, N: int(n), Any: anyN}, nil
}

// dedup parses `dedup a, b`.
func (p *parser) dedup(kw token) (Command, error) {
	c := &DedupCmd{P: kw.pos}
	for {
		what := "a field name after ','"
		if len(c.Fields) == 0 {
			what = "a field name after 'dedup'"
		}
		f, err := p.fieldRef(what)
		if err != nil {
			return nil, err
		}
		c.Fields = append(c.Fields, f)
		if p.tok.kind != tComma {
			return c, nil
		}
		if err := p.next(); err != nil {
			return nil, err
		}
	}
}

// fieldRef parses a plain or quoted field name.
func (p *parser) fieldRef(what string) (*FieldRef, error) {
	t := p.tok
	f := &FieldRef{P: t.pos}
	switch {
	case t.kind == tQIdent:
		f.Name, f.Quoted = t.val, true
	case t.kind == tIdent && !isKeyword(t.text):
		f.Name = t.text
	default:
		return nil, p.expected(what)
	}
	return f, p.next()
}

// parse parses `parse [field] "glob" as a, b` and `parse [field] /regex/`.
func (p *parser) parse(kw token) (Command, error) {
	c := &ParseCmd{P: kw.pos}
	if p.tok.kind == tIdent || p.tok.kind == tQIdent {
		f, err := p.fieldRef("a field name, a \"glob * pattern\" or a /regex/ after 'parse'")
		if err != nil {
			return nil, err
		}
		c.Source = f
	} else {
		c.Source = &FieldRef{P: kw.pos, Name: "@message"}
	}
	t := p.tok
	switch {
	case t.kind == tString:
		if err := p.next(); err != nil {
			return nil, err
		}
		c.Glob = t.val
		stars := strings.Count(t.val, "*")
		if stars == 0 {
			return nil, errAt(t.pos, "the parse pattern has no '*' to extract")
		}
		if !p.tok.isKw("as") {
			return nil, p.expected("'as' and " + strconv.Itoa(stars) + " field name(s) after the parse pattern")
		}
		if err := p.next(); err != nil {
			return nil, err
		}
		for {
			what := "a field name after ','"
			if len(c.Names) == 0 {
				what = "a field name after 'as'"
			}
			n, err := p.name(what)
			if err != nil {
				return nil, err
			}
			c.Names = append(c.Names, n)
			if p.tok.kind != tComma {
				break
			}
			if err := p.next(); err != nil {
				return nil, err
			}
		}
		if len(c.Names) != stars {
			return nil, errAt(t.pos, "the parse pattern has "+strconv.Itoa(stars)+" '*' but "+strconv.Itoa(len(c.Names))+" field name(s) follow 'as'")
		}
	case t.isOp("/"):
		rt, err := p.lx.relexRegex(t)
		if err != nil {
			return nil, err
		}
		p.tok = rt
		if err := p.next(); err != nil {
			return nil, err
		}
		c.IsRegex, c.Regex = true, rt.val
		names, msg := groupNames(rt.val)
		if msg != "" {
			return nil, errAt(rt.pos, msg)
		}
		c.Names = names
		if p.tok.isKw("as") {
			return nil, errAt(p.tok.pos, "parse with a regular expression takes field names from its named groups (?<name>...); 'as' is not allowed")
		}
	default:
		return nil, p.expected("a \"glob * pattern\" or a /regex/ for 'parse'")
	}
	return c, nil
}

// groupNames lists the named capture groups of a regex, (?<name>...) or
// (?P<name>...), in order. It returns an error message when there are none,
// a name is invalid or unterminated, or a name repeats.
func groupNames(re string) ([]string, string) {
	var names []string
	inClass := false
	for i := 0; i < len(re); i++ {
		switch c := re[i]; {
		case c == '\\':
			i++ // skip the escaped character
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			// A ']' right after '[' or '[^' is a literal.
			if i+1 < len(re) && re[i+1] == '^' {
				i++
			}
			if i+1 < len(re) && re[i+1] == ']' {
				i++
			}
		case c == '(' && strings.HasPrefix(re[i:], "(?<") || strings.HasPrefix(re[i:], "(?P<"):
			start := i + 3
			if re[i+2] == 'P' {
				start++
			}
			if start < len(re) && (re[start] == '=' || re[start] == '!') {
				continue // lookbehind, not a name
			}
			end := strings.IndexByte(re[start:], '>')
			if end < 0 {
				return nil, "unterminated group name in regular expression"
			}
			name := re[start : start+end]
			if !validGroupName(name) {
				return nil, "invalid group name " + strconv.Quote(name) + " in regular expression: use letters, digits and _ (an optional @ first)"
			}
			for _, n := range names {
				if n == name {
					return nil, "group name " + strconv.Quote(name) + " appears twice in the regular expression"
				}
			}
			names = append(names, name)
			i = start + end
		}
	}
	if len(names) == 0 {
		return nil, "the regular expression has no named group (?<name>...) to extract"
	}
	return names, ""
}

// validGroupName reports whether a regex group name can name a field: an
// optional @, then letters, digits and underscores.
func validGroupName(name string) bool {
	name = strings.TrimPrefix(name, "@")
	if name == "" {
		return false
	}
	for _, r := range name {
		if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

// Expressions. Precedence, lowest first: or; and; not; comparisons (= != <
// <= > >= like, not like, =~, in, not in); + -; * / %; unary -; ^.

func (p *parser) expr() (Expr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, errAt(p.tok.pos, "expression nested too deeply")
	}
	return p.or()
}

func (p *parser) or() (Expr, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.tok.isKw("or") {
		op := p.tok
		if err := p.next(); err != nil {
			return nil, err
		}
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = &BinaryExpr{P: op.pos, Op: "or", L: l, R: r}
	}
	return l, nil
}

func (p *parser) and() (Expr, error) {
	l, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.tok.isKw("and") {
		op := p.tok
		if err := p.next(); err != nil {
			return nil, err
		}
		r, err := p.not()
		if err != nil {
			return nil, err
		}
		l = &BinaryExpr{P: op.pos, Op: "and", L: l, R: r}
	}
	return l, nil
}

func (p *parser) not() (Expr, error) {
	if !p.tok.isKw("not") {
		return p.comparison()
	}
	op := p.tok
	if err := p.next(); err != nil {
		return nil, err
	}
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, errAt(op.pos, "expression nested too deeply")
	}
	x, err := p.not()
	if err != nil {
		return nil, err
	}
	return &UnaryExpr{P: op.pos, Op: "not", X: x}, nil
}

func (p *parser) comparison() (Expr, error) {
	l, err := p.additive()
	if err != nil {
		return nil, err
	}
	for {
		op := p.tok
		var name string
		negated := false
		switch {
		case op.kind == tOp && (op.text == "=" || op.text == "!=" || op.text == "<" ||
			op.text == "<=" || op.text == ">" || op.text == ">=" || op.text == "=~"):
			name = op.text
		case op.isKw("like"):
			name = "like"
		case op.isKw("in"):
			name = "in"
		case op.isKw("not"):
			// After an operand, `not` can only begin `not like` or `not in`.
			if err := p.next(); err != nil {
				return nil, err
			}
			switch {
			case p.tok.isKw("like"):
				name = "notlike"
			case p.tok.isKw("in"):
				name, negated = "in", true
			default:
				return nil, p.expected("'like' or 'in' after 'not'")
			}
		default:
			return l, nil
		}
		if err := p.next(); err != nil {
			return nil, err
		}
		if name == "in" {
			list, err := p.list()
			if err != nil {
				return nil, err
			}
			l = &InExpr{P: op.pos, X: l, List: list, Not: negated}
			continue
		}
		r, err := p.additive()
		if err != nil {
			return nil, err
		}
		l = &BinaryExpr{P: op.pos, Op: name, L: l, R: r}
	}
}

// list parses `[a, b, ...]` (possibly empty) after in.
func (p *parser) list() ([]Expr, error) {
	if _, err := p.expect(tLBrack, "'[' after 'in'"); err != nil {
		return nil, err
	}
	var list []Expr
	if p.tok.kind == tRBrack {
		return list, p.next()
	}
	for {
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		list = append(list, e)
		switch p.tok.kind {
		case tComma:
			if err := p.next(); err != nil {
				return nil, err
			}
		case tRBrack:
			return list, p.next()
		default:
			return nil, p.expected("',' or ']'")
		}
	}
}

func (p *parser) additive() (Expr, error) {
	l, err := p.multiplicative()
	if err != nil {
		return nil, err
	}
	for p.tok.isOp("+") || p.tok.isOp("-") {
		op := p.tok
		if err := p.next(); err != nil {
			return nil, err
		}
		r, err := p.multiplicative()
		if err != nil {
			return nil, err
		}
		l = &BinaryExpr{P: op.pos, Op: op.text, L: l, R: r}
	}
	return l, nil
}

func (p *parser) multiplicative() (Expr, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.tok.isOp("*") || p.tok.isOp("/") || p.tok.isOp("%") {
		op := p.tok
		if err := p.next(); err != nil {
			return nil, err
		}
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = &BinaryExpr{P: op.pos, Op: op.text, L: l, R: r}
	}
	return l, nil
}

// unary parses `-x` (binding looser than ^, so -2^2 is -(2^2)).
func (p *parser) unary() (Expr, error) {
	if !p.tok.isOp("-") {
		return p.power()
	}
	op := p.tok
	if err := p.next(); err != nil {
		return nil, err
	}
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, errAt(op.pos, "expression nested too deeply")
	}
	x, err := p.unary()
	if err != nil {
		return nil, err
	}
	return &UnaryExpr{P: op.pos, Op: "-", X: x}, nil
}

// power parses `a ^ b`, right-associative: 2^3^2 is 2^(3^2).
func (p *parser) power() (Expr, error) {
	l, err := p.primary()
	if err != nil {
		return nil, err
	}
	if !p.tok.isOp("^") {
		return l, nil
	}
	op := p.tok
	if err := p.next(); err != nil {
		return nil, err
	}
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, errAt(op.pos, "expression nested too deeply")
	}
	r, err := p.unary()
	if err != nil {
		return nil, err
	}
	return &BinaryExpr{P: op.pos, Op: "^", L: l, R: r}, nil
}

// primary parses a literal, a field, a call or a parenthesised expression.
func (p *parser) primary() (Expr, error) {
	t := p.tok
	switch t.kind {
	case tNumber:
		n := &NumberLit{P: t.pos, Text: t.text}
		if strings.IndexByte(t.text, '.') < 0 {
			v, err := strconv.ParseInt(t.text, 10, 64)
			if err == nil {
				n.IsInt, n.Int, n.Float = true, v, float64(v)
				return n, p.next()
			}
			// Past int64: a float64, as every number is in Logs Insights.
			f, ferr := strconv.ParseFloat(t.text, 64)
			if ferr != nil {
				return nil, errAt(t.pos, "number "+t.describe()+" is too large")
			}
			n.Float = f
		} else {
			v, err := strconv.ParseFloat(t.text, 64)
			if err != nil {
				return nil, errAt(t.pos, "number "+t.describe()+" is out of range")
			}
			n.Float = v
		}
		return n, p.next()
	case tDuration:
		unit := t.val
		digits := len(t.text)
		for i, c := range t.text {
			if c < '0' || c > '9' {
				digits = i
				break
			}
		}
		v, err := strconv.ParseInt(t.text[:digits], 10, 64)
		if err != nil {
			return nil, errAt(t.pos, "invalid duration "+t.describe())
		}
		return &DurationLit{P: t.pos, Text: t.text, N: v, Unit: unit}, p.next()
	case tString:
		return &StringLit{P: t.pos, Value: t.val}, p.next()
	case tQIdent:
		return &FieldRef{P: t.pos, Name: t.val, Quoted: true}, p.next()
	case tLParen:
		if err := p.next(); err != nil {
			return nil, err
		}
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tRParen, "')'"); err != nil {
			return nil, err
		}
		return e, nil
	case tOp:
		if t.text == "/" {
			rt, err := p.lx.relexRegex(t)
			if err != nil {
				return nil, err
			}
			p.tok = rt
			return &RegexLit{P: rt.pos, Pattern: rt.val}, p.next()
		}
	case tIdent:
		switch {
		case t.isKw("true"), t.isKw("false"):
			return &BoolLit{P: t.pos, Value: t.isKw("true")}, p.next()
		case isKeyword(t.text):
			return nil, p.expected("a value (write a field named " + t.describe() + " in backticks)")
		}
		if err := p.next(); err != nil {
			return nil, err
		}
		if p.tok.kind != tLParen {
			// A bare name is a field, even when it is also a function name:
			// `filter count >= 2` refers to the count() column.
			return &FieldRef{P: t.pos, Name: t.text}, nil
		}
		return p.call(t)
	}
	return nil, p.expected("a value")
}

// call parses the argument list of a call to name; the current token is
// '('.
func (p *parser) call(name token) (Expr, error) {
	if strings.ContainsAny(name.text, "@.") {
		return nil, errAt(name.pos, "invalid function name "+name.describe())
	}
	c := &CallExpr{P: name.pos, Name: strings.ToLower(name.text)}
	if err := p.next(); err != nil {
		return nil, err
	}
	if p.tok.kind == tRParen {
		return c, p.next()
	}
	if p.tok.isOp("*") {
		if c.Name != "count" {
			return nil, errAt(p.tok.pos, "only count accepts '*', as count(*)")
		}
		if err := p.next(); err != nil {
			return nil, err
		}
		c.Star = true
		if _, err := p.expect(tRParen, "')' after count(*"); err != nil {
			return nil, err
		}
		return c, nil
	}
	for {
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		c.Args = append(c.Args, e)
		switch p.tok.kind {
		case tComma:
			if err := p.next(); err != nil {
				return nil, err
			}
		case tRParen:
			return c, p.next()
		default:
			return nil, p.expected("',' or ')'")
		}
	}
}
