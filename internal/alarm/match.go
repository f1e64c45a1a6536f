package alarm

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// span is a field's [start, end) byte range in a log line.
type span struct{ start, end int32 }

// maxStackFields is how many fields Match splits a line into without
// allocating; longer lines use the heap.
const maxStackFields = 64

// Fields holds what a match extracted from one log line: for space-delimited
// patterns the fields by name ($name) and by position ($1, $2, ...); for JSON
// patterns the decoded document. A Fields is reused across calls to
// MatchFields to avoid allocation; it refers to the line it was filled from,
// so the line must not change while the Fields is in use.
type Fields struct {
	pat   *Pattern
	line  []byte
	spans []span
	doc   any
}

// Len returns the number of fields of the line (space-delimited patterns).
func (f *Fields) Len() int { return len(f.spans) }

// Index returns field n (1-based, as $1 ... $N) of the line.
func (f *Fields) Index(n int) ([]byte, bool) {
	if n < 1 || n > len(f.spans) {
		return nil, false
	}
	s := f.spans[n-1]
	return f.line[s.start:s.end], true
}

// Named returns the field named name in the pattern (without the '$').
func (f *Fields) Named(name string) ([]byte, bool) {
	if f.pat == nil {
		return nil, false
	}
	for i, s := range f.pat.slots {
		if s.name == name {
			return f.Index(f.pat.position(i, len(f.spans)) + 1)
		}
	}
	return nil, false
}

// Lookup resolves a reference as metric transformations write it: "$name",
// "$N" (1-based position) or, for JSON patterns, "$.selector". String values
// of JSON are returned unquoted; numbers, booleans and null as their JSON text.
func (f *Fields) Lookup(ref string) (string, bool) {
	if strings.HasPrefix(ref, "$.") {
		sel, err := (&parser{src: ref}).selector()
		if err != nil || f.doc == nil {
			return "", false
		}
		v, ok := sel.lookup(f.doc)
		if !ok {
			return "", false
		}
		return jsonText(v)
	}
	name := strings.TrimPrefix(ref, "$")
	if n, err := strconv.Atoi(name); err == nil {
		b, ok := f.Index(n)
		return string(b), ok
	}
	b, ok := f.Named(name)
	return string(b), ok
}

// position maps slot i to its 0-based field position in a line of n fields.
func (p *Pattern) position(i, n int) int {
	if p.ellipsis >= 0 && i >= p.ellipsis {
		return n - (len(p.slots) - i)
	}
	return i
}

// Match reports whether the pattern matches the log line. For term and
// space-delimited patterns it does not allocate (lines of up to 64 fields).
func (p *Pattern) Match(line []byte) bool {
	switch p.kind {
	case KindAll:
		return true
	case KindTerms:
		return p.matchTerms(line)
	case KindSpaceDelimited:
		var buf [maxStackFields]span
		spans := splitFields(line, buf[:0])
		return p.matchSpans(line, spans)
	case KindJSON:
		doc, ok := decodeJSON(line)
		return ok && p.evalJSON(p.jcond, doc)
	}
	return false
}

// MatchFields is Match that also keeps the extracted fields in f, for metric
// values and dimensions. It allocates only when f must grow.
func (p *Pattern) MatchFields(line []byte, f *Fields) bool {
	f.pat, f.line, f.doc = p, line, nil
	f.spans = f.spans[:0]
	switch p.kind {
	case KindAll:
		return true
	case KindTerms:
		return p.matchTerms(line)
	case KindSpaceDelimited:
		f.spans = splitFields(line, f.spans)
		return p.matchSpans(line, f.spans)
	case KindJSON:
		doc, ok := decodeJSON(line)
		if !ok {
			return false
		}
		f.doc = doc
		return p.evalJSON(p.jcond, doc)
	}
	return false
}

// splitFields splits a space-delimited log event into fields. Runs of spaces
// separate fields; text between double quotes or square brackets is one field
// (without the quotes or brackets), as CloudWatch Logs does.
func splitFields(line []byte, out []span) []span {
	i, n := 0, len(line)
	for {
		for i < n && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i >= n {
			return out
		}
		var s span
		switch line[i] {
		case '"':
			j := i + 1
			for j < n && line[j] != '"' {
				if line[j] == '\\' && j+1 < n {
					j++
				}
				j++
			}
			s = span{int32(i + 1), int32(j)}
			i = j + 1
		case '[':
			j := bytes.IndexByte(line[i+1:], ']')
			if j < 0 {
				j = n - i - 1
			}
			s = span{int32(i + 1), int32(i + 1 + j)}
			i = i + j + 2
		default:
			j := i
			for j < n && line[j] != ' ' && line[j] != '\t' {
				j++
			}
			s = span{int32(i), int32(j)}
			i = j
		}
		if i > n {
			i = n
		}
		out = append(out, s)
	}
}

func (p *Pattern) matchSpans(line []byte, spans []span) bool {
	n := len(spans)
	if p.ellipsis < 0 {
		if n != len(p.slots) {
			return false
		}
	} else if n < len(p.slots) {
		return false
	}
	if p.cond == nil {
		return true
	}
	return p.evalSpace(p.cond, line, spans)
}

func (p *Pattern) evalSpace(c *cond, line []byte, spans []span) bool {
	switch c.op {
	case condAnd:
		return p.evalSpace(c.left, line, spans) && p.evalSpace(c.right, line, spans)
	case condOr:
		return p.evalSpace(c.left, line, spans) || p.evalSpace(c.right, line, spans)
	}
	s := spans[p.position(c.ref, len(spans))]
	return compareBytes(line[s.start:s.end], c.cmp, &c.val)
}

// compareBytes applies a comparison to a field's text.
func compareBytes(field []byte, op cmpOp, v *value) bool {
	switch v.kind {
	case valAny:
		return op == opEq
	case valRegex:
		m := v.re.Match(field)
		if op == opNe {
			return !m
		}
		return m
	case valNumber:
		f, ok := parseNumber(field)
		if !ok {
			// = and != with a number fall back to comparing the text.
			switch op {
			case opEq:
				return string(field) == v.text
			case opNe:
				return string(field) != v.text
			}
			return false
		}
		return compareNumbers(f, op, v.num)
	}
	m := globMatch(field, v)
	if op == opNe {
		return !m
	}
	return m
}

func compareNumbers(a float64, op cmpOp, b float64) bool {
	switch op {
	case opEq:
		return a == b
	case opNe:
		return a != b
	case opLt:
		return a < b
	case opLe:
		return a <= b
	case opGt:
		return a > b
	case opGe:
		return a >= b
	}
	return false
}

// globMatch matches a string value with optional leading/trailing '*'.
func globMatch(field []byte, v *value) bool {
	core := v.core
	switch {
	case v.prefix && v.suffix:
		return bytes.Contains(field, []byte(core))
	case v.prefix:
		return len(field) >= len(core) && string(field[len(field)-len(core):]) == core
	case v.suffix:
		return len(field) >= len(core) && string(field[:len(core)]) == core
	}
	return string(field) == core
}

func (p *Pattern) matchTerms(line []byte) bool {
	for gi := range p.groups {
		g := &p.groups[gi]
		ok := true
		for i := range g.include {
			if !g.include[i].in(line) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		for i := range g.exclude {
			if g.exclude[i].in(line) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (t *term) in(line []byte) bool {
	switch {
	case t.all:
		return true
	case t.re != nil:
		return t.re.Match(line)
	}
	return bytes.Contains(line, []byte(t.text))
}

// parseNumber parses an integer, decimal or scientific-notation number with an
// optional sign. It does not allocate for integers of up to 15 digits.
func parseNumber(b []byte) (float64, bool) {
	if len(b) == 0 || len(b) > 64 {
		return 0, false
	}
	i := 0
	neg := false
	if b[0] == '+' || b[0] == '-' {
		neg = b[0] == '-'
		i++
	}
	digits := 0
	var n uint64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if digits < 19 {
			n = n*10 + uint64(b[i]-'0')
		}
		digits++
		i++
	}
	if i == len(b) && digits > 0 && digits <= 15 {
		f := float64(n)
		if neg {
			f = -f
		}
		return f, true
	}
	// Validate the general form before handing it to strconv, so that
	// strconv never builds an error.
	j := i
	frac := 0
	if j < len(b) && b[j] == '.' {
		j++
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
			frac++
		}
	}
	if digits+frac == 0 {
		return 0, false
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		e := 0
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
			e++
		}
		if e == 0 {
			return 0, false
		}
	}
	if j != len(b) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// ---- JSON ----

func decodeJSON(line []byte) (any, bool) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return nil, false
	}
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		return nil, false
	}
	return doc, true
}

func (s *selector) lookup(doc any) (any, bool) {
	cur := doc
	for _, st := range s.steps {
		if st.index >= 0 {
			arr, ok := cur.([]any)
			if !ok || st.index >= len(arr) {
				return nil, false
			}
			cur = arr[st.index]
			continue
		}
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = obj[st.key]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

// jsonText renders a JSON value node as a string: strings unquoted, numbers as
// written. Objects and arrays are not value nodes.
func jsonText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return string(x), true
	case bool:
		return strconv.FormatBool(x), true
	case nil:
		return "null", true
	}
	return "", false
}

func (p *Pattern) evalJSON(c *cond, doc any) bool {
	switch c.op {
	case condAnd:
		return p.evalJSON(c.left, doc) && p.evalJSON(c.right, doc)
	case condOr:
		return p.evalJSON(c.left, doc) || p.evalJSON(c.right, doc)
	}
	v, found := p.selectors[c.ref].lookup(doc)
	switch c.cmp {
	case opExists:
		return found
	case opNotExists:
		return !found
	case opIsNull:
		return found && v == nil
	case opIsTrue:
		b, ok := v.(bool)
		return found && ok && b
	case opIsFalse:
		b, ok := v.(bool)
		return found && ok && !b
	}
	if !found {
		return false
	}
	// The selector must point to a value node: if it points to an array or
	// object, neither = nor != matches.
	switch x := v.(type) {
	case map[string]any, []any:
		return false
	case json.Number:
		if c.val.kind == valNumber {
			f, err := x.Float64()
			if err != nil {
				return false
			}
			return compareNumbers(f, c.cmp, c.val.num)
		}
		return compareBytes([]byte(x), c.cmp, &c.val)
	case string:
		return compareBytes([]byte(x), c.cmp, &c.val)
	case bool:
		return compareBytes([]byte(strconv.FormatBool(x)), c.cmp, &c.val)
	case nil:
		return compareBytes([]byte("null"), c.cmp, &c.val)
	}
	return false
}
