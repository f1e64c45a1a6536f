// Package alarm implements CloudWatch-style metric filters and metric alarms
// over log lines: CloudWatch Logs filter patterns (term, space-delimited and
// JSON), metric transformations aggregated per minute, and alarms with
// CloudWatch's evaluation semantics (period, statistic, M out of N,
// treat-missing-data, OK / ALARM / INSUFFICIENT_DATA).
//
// The package works on plain log lines ([]byte messages with a timestamp), so
// it can run on any log; it does not depend on the flow-log decoder.
//
// References (AWS documentation):
//   - "Filter pattern syntax for metric filters" (CloudWatch Logs User Guide,
//     FilterAndPatternSyntax).
//   - "Using Amazon CloudWatch alarms", sections "Evaluating an alarm" and
//     "Configuring how CloudWatch alarms treat missing data"
//     (CloudWatch User Guide, AlarmThatSendsEmail).
package alarm

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Kind says which of CloudWatch's three filter-pattern syntaxes a pattern uses.
type Kind uint8

// Pattern kinds.
const (
	// KindAll matches every log event (the empty pattern).
	KindAll Kind = iota
	// KindTerms is a term pattern: ERROR, "exact phrase", ?A ?B, -term.
	KindTerms
	// KindSpaceDelimited is a space-delimited pattern: [a, b=..., ...].
	KindSpaceDelimited
	// KindJSON is a JSON pattern: { $.eventType = "UpdateTrail" }.
	KindJSON
)

func (k Kind) String() string {
	switch k {
	case KindAll:
		return "all"
	case KindTerms:
		return "terms"
	case KindSpaceDelimited:
		return "space-delimited"
	case KindJSON:
		return "json"
	}
	return "unknown"
}

// SyntaxError is a filter-pattern parse error with the 1-based byte column
// where parsing stopped and what was expected there.
type SyntaxError struct {
	Pattern  string
	Column   int
	Expected string
	Found    string
}

func (e *SyntaxError) Error() string {
	found := e.Found
	if found == "" {
		found = "end of pattern"
	} else {
		found = strconv.Quote(found)
	}
	return fmt.Sprintf("filter pattern column %d: expected %s, found %s", e.Column, e.Expected, found)
}

// Pattern is a compiled CloudWatch Logs filter pattern. It is immutable and
// safe for concurrent use.
type Pattern struct {
	src  string
	kind Kind

	// term patterns: any group matches.
	groups []termGroup

	// space-delimited patterns.
	slots    []slot // named and unnamed fields, the ellipsis excluded
	ellipsis int    // index in slots before which "..." stands; -1 if none
	cond     *cond  // conjunction of all field conditions; nil when none

	// JSON patterns.
	jcond     *cond
	selectors []selector
}

type termGroup struct {
	include []term
	exclude []term
}

type term struct {
	text string
	re   *regexp.Regexp
	all  bool // `" "`: matches everything
}

type slot struct {
	name string // "" for an unnamed field
}

// String returns the pattern as written.
func (p *Pattern) String() string { return p.src }

// Kind returns the pattern's syntax.
func (p *Pattern) Kind() Kind { return p.kind }

// FieldNames returns the names of the fields of a space-delimited pattern, in
// order ("" for unnamed fields); nil for other kinds.
func (p *Pattern) FieldNames() []string {
	if p.kind != KindSpaceDelimited {
		return nil
	}
	out := make([]string, len(p.slots))
	for i, s := range p.slots {
		out[i] = s.name
	}
	return out
}

// cond is a node of a condition tree: a comparison or an && / || of two
// conditions.
type cond struct {
	op          condOp
	left, right *cond
	ref         int // slot index (space-delimited) or selector index (JSON)
	cmp         cmpOp
	val         value
}

type condOp uint8

const (
	condCmp condOp = iota
	condAnd
	condOr
)

type cmpOp uint8

const (
	opEq cmpOp = iota
	opNe
	opLt
	opLe
	opGt
	opGe
	opIsNull
	opIsTrue
	opIsFalse
	opExists
	opNotExists
)

var cmpNames = [...]string{"=", "!=", "<", "<=", ">", ">=", "IS NULL", "IS TRUE", "IS FALSE", "EXISTS", "NOT EXISTS"}

func (o cmpOp) String() string { return cmpNames[o] }

type valueKind uint8

const (
	valString valueKind = iota
	valNumber
	valAny // a lone *
	valRegex
)

// value is a literal on the right of a comparison. Strings may carry a
// leading and/or trailing * wildcard; the documentation says a * inside a
// string is literal ("Ev*ent will only match the actual string Ev*ent").
type value struct {
	kind   valueKind
	text   string // the literal as written, without quotes
	core   string // text without the wildcard stars
	prefix bool   // leading *: anything may come before core
	suffix bool   // trailing *: anything may come after core
	num    float64
	isNum  bool // text is a number (also for valString compared with =)
	re     *regexp.Regexp
}

func makeValue(text string, quoted bool) value {
	v := value{kind: valString, text: text, core: text}
	if text == "*" {
		v.kind = valAny
		return v
	}
	if !quoted {
		if n, ok := parseNumber([]byte(text)); ok {
			v.kind = valNumber
			v.num = n
			v.isNum = true
			return v
		}
	}
	if len(v.core) > 0 && v.core[0] == '*' {
		v.prefix = true
		v.core = v.core[1:]
	}
	if len(v.core) > 0 && v.core[len(v.core)-1] == '*' {
		v.suffix = true
		v.core = v.core[:len(v.core)-1]
	}
	return v
}

// ParseFilterPattern compiles a CloudWatch Logs filter pattern. The syntax is
// chosen from the first character: '[' for space-delimited, '{' for JSON,
// anything else for a term pattern; an empty pattern matches every event.
func ParseFilterPattern(s string) (*Pattern, error) {
	if len(s) > 1024 {
		return nil, fmt.Errorf("filter pattern is %d bytes long, longer than CloudWatch's 1024", len(s))
	}
	p := &parser{src: s}
	p.skipSpace()
	if p.pos >= len(s) {
		return &Pattern{src: s, kind: KindAll, ellipsis: -1}, nil
	}
	pat := &Pattern{src: s, ellipsis: -1}
	var err error
	switch s[p.pos] {
	case '[':
		pat.kind = KindSpaceDelimited
		err = p.parseSpaceDelimited(pat)
	case '{':
		pat.kind = KindJSON
		err = p.parseJSON(pat)
	default:
		pat.kind = KindTerms
		err = p.parseTerms(pat)
	}
	if err != nil {
		return nil, err
	}
	return pat, nil
}

// MustParseFilterPattern is ParseFilterPattern for patterns known to be valid
// (tests, built-in defaults); it panics on error.
func MustParseFilterPattern(s string) *Pattern {
	p, err := ParseFilterPattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

type parser struct {
	src string
	pos int
}

func (p *parser) errorf(expected string) error {
	found := ""
	if p.pos < len(p.src) {
		end := p.pos + 1
		for end < len(p.src) && end-p.pos < 12 && !isSpace(p.src[end]) {
			end++
		}
		found = p.src[p.pos:end]
	}
	return &SyntaxError{Pattern: p.src, Column: p.pos + 1, Expected: expected, Found: found}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *parser) skipSpace() {
	for p.pos < len(p.src) && isSpace(p.src[p.pos]) {
		p.pos++
	}
}

func (p *parser) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *parser) consume(tok string) bool {
	if strings.HasPrefix(p.src[p.pos:], tok) {
		p.pos += len(tok)
		return true
	}
	return false
}

// quoted reads a double-quoted string starting at p.pos (which holds '"'),
// processing backslash escapes.
func (p *parser) quoted() (string, error) {
	start := p.pos
	p.pos++
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch c {
		case '"':
			p.pos++
			return b.String(), nil
		case '\\':
			if p.pos+1 < len(p.src) {
				b.WriteByte(p.src[p.pos+1])
				p.pos += 2
				continue
			}
		}
		b.WriteByte(c)
		p.pos++
	}
	p.pos = start
	return "", p.errorf("a closing '\"' for this string")
}

// regex reads a %regex% literal starting at p.pos (which holds '%').
func (p *parser) regex() (*regexp.Regexp, string, error) {
	start := p.pos
	end := strings.IndexByte(p.src[p.pos+1:], '%')
	if end < 0 {
		return nil, "", p.errorf("a closing '%' for this regular expression")
	}
	text := p.src[p.pos+1 : p.pos+1+end]
	re, err := regexp.Compile(text)
	if err != nil {
		return nil, "", &SyntaxError{Pattern: p.src, Column: start + 1, Expected: "a valid regular expression (" + err.Error() + ")", Found: "%" + text + "%"}
	}
	p.pos += end + 2
	return re, text, nil
}

// ---- term patterns ----

func (p *parser) parseTerms(pat *Pattern) error {
	var cur *termGroup
	for {
		p.skipSpace()
		if p.pos >= len(p.src) {
			break
		}
		or, not := false, false
		switch p.peek() {
		case '?':
			or = true
			p.pos++
		case '-':
			not = true
			p.pos++
		}
		if or || not {
			p.skipSpace()
			if p.pos >= len(p.src) {
				prefix := "-"
				if or {
					prefix = "?"
				}
				return p.errorf("a term after '" + prefix + "'")
			}
		}
		var t term
		switch p.peek() {
		case '"':
			s, err := p.quoted()
			if err != nil {
				return err
			}
			t.text = s
			if strings.TrimSpace(s) == "" {
				t.all = true
			}
		case '%':
			re, text, err := p.regex()
			if err != nil {
				return err
			}
			t.re, t.text = re, text
		default:
			start := p.pos
			for p.pos < len(p.src) && !isSpace(p.src[p.pos]) {
				p.pos++
			}
			t.text = p.src[start:p.pos]
		}
		if or {
			pat.groups = append(pat.groups, termGroup{})
			cur = &pat.groups[len(pat.groups)-1]
		} else if cur == nil {
			pat.groups = append(pat.groups, termGroup{})
			cur = &pat.groups[len(pat.groups)-1]
		}
		if not {
			cur.exclude = append(cur.exclude, t)
		} else {
			cur.include = append(cur.include, t)
		}
		// Re-take the pointer: append may have moved the backing array.
		cur = &pat.groups[len(pat.groups)-1]
	}
	return nil
}

// ---- space-delimited patterns ----

func isNameByte(c byte) bool {
	return c == '_' || c == '-' || c == '.' || c == '@' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func (p *parser) name() string {
	start := p.pos
	for p.pos < len(p.src) && isNameByte(p.src[p.pos]) {
		p.pos++
	}
	return p.src[start:p.pos]
}

type pendingCond struct {
	slot int
	name string
	col  int
	c    *cond
}

func (p *parser) parseSpaceDelimited(pat *Pattern) error {
	p.pos++ // '['
	var refs []pendingCond
	for {
		p.skipSpace()
		if p.pos >= len(p.src) {
			return p.errorf("a field name, '...' or ']'")
		}
		if p.consume("...") || p.consume("…") {
			if pat.ellipsis >= 0 {
				return &SyntaxError{Pattern: p.src, Column: p.pos - 2, Expected: "at most one '...' in a pattern", Found: "..."}
			}
			pat.ellipsis = len(pat.slots)
		} else if c := p.peek(); c == ',' || c == ']' {
			if c == ']' && len(pat.slots) == 0 && pat.ellipsis < 0 {
				return p.errorf("at least one field")
			}
			pat.slots = append(pat.slots, slot{}) // empty slot: an unnamed field
		} else {
			col := p.pos
			n := p.name()
			if n == "" {
				return p.errorf("a field name, '...' or ']'")
			}
			idx := len(pat.slots)
			pat.slots = append(pat.slots, slot{name: n})
			p.skipSpace()
			if p.pos >= len(p.src) {
				return p.errorf("a comparison operator, ',' or ']'")
			}
			if c := p.peek(); c != ',' && c != ']' {
				// A condition: its first comparison's subject is this field.
				c, err := p.spaceOr(&refs, &pendingCond{slot: idx, name: n, col: col})
				if err != nil {
					return err
				}
				if pat.cond == nil {
					pat.cond = c
				} else {
					pat.cond = &cond{op: condAnd, left: pat.cond, right: c}
				}
			}
		}
		p.skipSpace()
		if p.consume(",") {
			continue
		}
		if p.consume("]") {
			break
		}
		return p.errorf("',' or ']'")
	}
	p.skipSpace()
	if p.pos < len(p.src) {
		return p.errorf("end of pattern after ']'")
	}
	if len(pat.slots) == 0 && pat.ellipsis < 0 {
		return &SyntaxError{Pattern: p.src, Column: 2, Expected: "at least one field", Found: "]"}
	}
	// Resolve names used inside conditions to field slots.
	for _, r := range refs {
		idx := -1
		for i, s := range pat.slots {
			if s.name == r.name {
				idx = i
				break
			}
		}
		if idx < 0 {
			for i, s := range pat.slots {
				if strings.EqualFold(s.name, r.name) {
					idx = i
					break
				}
			}
		}
		if idx < 0 {
			return &SyntaxError{Pattern: p.src, Column: r.col + 1, Expected: "the name of a field of this pattern", Found: r.name}
		}
		r.c.ref = idx
	}
	return nil
}

// chain reads operand (tok operand)…, joined by op from the left: one
// level of the || and && grammar of both pattern kinds.
func (p *parser) chain(tok string, op condOp, operand func() (*cond, error)) (*cond, error) {
	left, err := operand()
	if err != nil {
		return nil, err
	}
	for {
		p.skipSpace()
		if !p.consume(tok) {
			return left, nil
		}
		right, err := operand()
		if err != nil {
			return nil, err
		}
		left = &cond{op: op, left: left, right: right}
	}
}

// parens reads ( inner ) when a parenthesis opens at p.pos; ok says
// whether one did.
func (p *parser) parens(inner func() (*cond, error)) (c *cond, ok bool, err error) {
	if !p.consume("(") {
		return nil, false, nil
	}
	if c, err = inner(); err != nil {
		return nil, true, err
	}
	p.skipSpace()
	if !p.consume(")") {
		return nil, true, p.errorf("')'")
	}
	return c, true, nil
}

// spaceOr reads a condition of a space-delimited term; first, when set,
// is its first comparison's subject, already read.
func (p *parser) spaceOr(refs *[]pendingCond, first *pendingCond) (*cond, error) {
	return p.chain("||", condOr, func() (*cond, error) {
		c, err := p.spaceAnd(refs, first)
		first = nil
		return c, err
	})
}

func (p *parser) spaceAnd(refs *[]pendingCond, first *pendingCond) (*cond, error) {
	return p.chain("&&", condAnd, func() (*cond, error) {
		c, err := p.spacePrimary(refs, first)
		first = nil
		return c, err
	})
}

func (p *parser) spacePrimary(refs *[]pendingCond, first *pendingCond) (*cond, error) {
	p.skipSpace()
	var subj pendingCond
	if first != nil {
		subj = *first
	} else {
		if c, ok, err := p.parens(func() (*cond, error) { return p.spaceOr(refs, nil) }); ok {
			return c, err
		}
		subj.col = p.pos
		subj.name = p.name()
		if subj.name == "" {
			return nil, p.errorf("a field name")
		}
	}
	p.skipSpace()
	op, ok := p.cmpOperator()
	if !ok {
		return nil, p.errorf("a comparison operator (= != < <= > >=)")
	}
	val, err := p.value(op)
	if err != nil {
		return nil, err
	}
	c := &cond{op: condCmp, cmp: op, val: val, ref: subj.slot}
	if first == nil {
		subj.c = c
		*refs = append(*refs, subj)
	}
	return c, nil
}

func (p *parser) cmpOperator() (cmpOp, bool) {
	switch {
	case p.consume("!="):
		return opNe, true
	case p.consume(">="):
		return opGe, true
	case p.consume("<="):
		return opLe, true
	case p.consume("="):
		return opEq, true
	case p.consume(">"):
		return opGt, true
	case p.consume("<"):
		return opLt, true
	}
	return 0, false
}

// value reads the literal after a comparison operator.
func (p *parser) value(op cmpOp) (value, error) {
	p.skipSpace()
	start := p.pos
	var v value
	switch p.peek() {
	case 0:
		return v, p.errorf("a value after '" + op.String() + "'")
	case '"':
		s, err := p.quoted()
		if err != nil {
			return v, err
		}
		v = makeValue(s, true)
	case '%':
		re, text, err := p.regex()
		if err != nil {
			return v, err
		}
		v = value{kind: valRegex, text: text, re: re}
	default:
		for p.pos < len(p.src) {
			c := p.src[p.pos]
			if isSpace(c) || c == ',' || c == ']' || c == ')' || c == '}' || c == '&' || c == '|' {
				break
			}
			p.pos++
		}
		if p.pos == start {
			return v, p.errorf("a value after '" + op.String() + "'")
		}
		v = makeValue(p.src[start:p.pos], false)
	}
	if op >= opLt && op <= opGe && v.kind != valNumber {
		p.pos = start
		return v, p.errorf("a number after '" + op.String() + "'")
	}
	return v, nil
}

// ---- JSON patterns ----

// selector is a JSON property path such as $.a.b[0].c.
type selector struct {
	text  string
	steps []step
}

type step struct {
	key   string
	index int // >= 0 for an array index step
}

func (p *parser) parseJSON(pat *Pattern) error {
	p.pos++ // '{'
	c, err := p.jsonOr(pat)
	if err != nil {
		return err
	}
	p.skipSpace()
	if !p.consume("}") {
		return p.errorf("'&&', '||' or '}'")
	}
	p.skipSpace()
	if p.pos < len(p.src) {
		return p.errorf("end of pattern after '}'")
	}
	pat.jcond = c
	return nil
}

func (p *parser) jsonOr(pat *Pattern) (*cond, error) {
	return p.chain("||", condOr, func() (*cond, error) { return p.jsonAnd(pat) })
}

func (p *parser) jsonAnd(pat *Pattern) (*cond, error) {
	return p.chain("&&", condAnd, func() (*cond, error) { return p.jsonPrimary(pat) })
}

func (p *parser) keyword(words ...string) bool {
	save := p.pos
	for _, w := range words {
		p.skipSpace()
		if len(p.src)-p.pos < len(w) || !strings.EqualFold(p.src[p.pos:p.pos+len(w)], w) {
			p.pos = save
			return false
		}
		p.pos += len(w)
		if p.pos < len(p.src) && isNameByte(p.src[p.pos]) {
			p.pos = save
			return false
		}
	}
	return true
}

func (p *parser) jsonPrimary(pat *Pattern) (*cond, error) {
	p.skipSpace()
	if c, ok, err := p.parens(func() (*cond, error) { return p.jsonOr(pat) }); ok {
		return c, err
	}
	sel, err := p.selector()
	if err != nil {
		return nil, err
	}
	pat.selectors = append(pat.selectors, sel)
	c := &cond{op: condCmp, ref: len(pat.selectors) - 1}
	p.skipSpace()
	switch {
	case p.keyword("IS", "NULL"):
		c.cmp = opIsNull
	case p.keyword("IS", "TRUE"):
		c.cmp = opIsTrue
	case p.keyword("IS", "FALSE"):
		c.cmp = opIsFalse
	case p.keyword("NOT", "EXISTS"):
		c.cmp = opNotExists
	case p.keyword("EXISTS"):
		c.cmp = opExists
	default:
		op, ok := p.cmpOperator()
		if !ok {
			return nil, p.errorf("a comparison (= != < <= > >=, IS NULL, IS TRUE, IS FALSE, EXISTS, NOT EXISTS)")
		}
		v, err := p.value(op)
		if err != nil {
			return nil, err
		}
		c.cmp, c.val = op, v
	}
	return c, nil
}

// selector reads $.a.b[0] starting at p.pos.
func (p *parser) selector() (selector, error) {
	start := p.pos
	if !p.consume("$") {
		return selector{}, p.errorf("a property selector starting with '$.'")
	}
	var steps []step
	for {
		switch {
		case p.consume("."):
			n := p.jsonKey()
			if n == "" {
				return selector{}, p.errorf("a property name after '.'")
			}
			steps = append(steps, step{key: n, index: -1})
		case p.consume("["):
			s := p.pos
			for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
				p.pos++
			}
			if s == p.pos {
				return selector{}, p.errorf("an array index")
			}
			i, err := strconv.Atoi(p.src[s:p.pos])
			if err != nil {
				p.pos = s
				return selector{}, p.errorf("a small array index")
			}
			if !p.consume("]") {
				return selector{}, p.errorf("']'")
			}
			steps = append(steps, step{index: i})
		default:
			if len(steps) == 0 {
				return selector{}, p.errorf("'.' after '$'")
			}
			return selector{text: p.src[start:p.pos], steps: steps}, nil
		}
	}
}

func (p *parser) jsonKey() string {
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '_' || c == '-' || c == '@' || c == ':' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') {
			p.pos++
			continue
		}
		break
	}
	return p.src[start:p.pos]
}
