package query

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// tokKind is the kind of a lexical token.
type tokKind uint8

const (
	tEOF      tokKind = iota
	tIdent            // plain identifier or keyword: srcaddr, @timestamp, and
	tQIdent           // backtick-quoted name; val holds it without backticks
	tNumber           // 42, 3.5
	tDuration         // 5m, 100ms
	tString           // "x" or 'x'; val holds the decoded value
	tRegex            // /x/; val holds the pattern (only produced by relexRegex)
	tPipe             // |
	tComma            // ,
	tLParen           // (
	tRParen           // )
	tLBrack           // [
	tRBrack           // ]
	tOp               // = != < <= > >= =~ + - * / % ^ (text holds it)
)

// token is one lexical token.
type token struct {
	kind  tokKind
	pos   Pos
	off   int    // byte offset of the first character
	text  string // the token as written
	val   string // decoded value for strings, quoted names and regexes
	space bool   // whitespace or a comment came before it
}

// isOp reports whether t is the operator op.
func (t token) isOp(op string) bool { return t.kind == tOp && t.text == op }

// isKw reports whether t is the keyword kw (case-insensitive).
func (t token) isKw(kw string) bool {
	return t.kind == tIdent && len(t.text) == len(kw) && strings.EqualFold(t.text, kw)
}

// describe names the token for an error message: 'by', end of query.
func (t token) describe() string {
	if t.kind == tEOF {
		return "end of query"
	}
	s := t.text
	if utf8.RuneCountInString(s) > 24 {
		r := []rune(s)
		s = string(r[:24]) + "…"
	}
	return "'" + s + "'"
}

// lexer splits query text into tokens on demand. It has no lookahead of its
// own: the parser holds one token, and when that token is '/' in a place
// where a value is expected, the parser calls relexRegex to read a regex
// literal instead of a division operator.
type lexer struct {
	src  string
	off  int // byte offset of the next unread character
	line int
	col  int
}

func newLexer(src string) *lexer { return &lexer{src: src, line: 1, col: 1} }

func (l *lexer) pos() Pos { return Pos{Line: l.line, Col: l.col} }

// peekRune returns the next character without consuming it (0 at the end).
func (l *lexer) peekRune() (rune, int) {
	if l.off >= len(l.src) {
		return 0, 0
	}
	c := l.src[l.off]
	if c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(l.src[l.off:])
}

// advance consumes one character of width w, keeping line and column.
func (l *lexer) advance(r rune, w int) {
	l.off += w
	if r == '\n' {
		l.line++
		l.col = 1
	} else {
		l.col++
	}
}

func errAt(p Pos, msg string) *SyntaxError { return &SyntaxError{Pos: p, Msg: msg} }

// skipSpace skips whitespace and # comments; it reports whether it skipped
// anything.
func (l *lexer) skipSpace() bool {
	skipped := false
	for l.off < len(l.src) {
		r, w := l.peekRune()
		switch r {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			l.advance(r, w)
		case '#':
			for l.off < len(l.src) {
				r, w := l.peekRune()
				if r == '\n' {
					break
				}
				l.advance(r, w)
			}
		default:
			if r == 0xFEFF || r == 0xA0 { // BOM, no-break space from copied text
				l.advance(r, w)
				break
			}
			return skipped
		}
		skipped = true
	}
	return skipped
}

// next reads the next token.
func (l *lexer) next() (token, error) {
	space := l.skipSpace()
	t := token{pos: l.pos(), off: l.off, space: space}
	if l.off >= len(l.src) {
		t.kind = tEOF
		return t, nil
	}
	r, w := l.peekRune()
	switch {
	case r == '`':
		return l.quotedName(t)
	case r == '"' || r == '\'':
		return l.stringLit(t, byte(r))
	case r >= '0' && r <= '9':
		return l.number(t)
	case r == '@' || isIdentStart(r):
		return l.ident(t)
	}
	l.advance(r, w)
	switch r {
	case '|':
		t.kind = tPipe
	case ',':
		t.kind = tComma
	case '(':
		t.kind = tLParen
	case ')':
		t.kind = tRParen
	case '[':
		t.kind = tLBrack
	case ']':
		t.kind = tRBrack
	case '+', '-', '*', '/', '%', '^':
		t.kind = tOp
	case '=':
		t.kind = tOp
		if c, _ := l.peekRune(); c == '~' {
			l.advance(c, 1)
		}
	case '<', '>':
		t.kind = tOp
		if c, _ := l.peekRune(); c == '=' {
			l.advance(c, 1)
		}
	case '!':
		c, _ := l.peekRune()
		if c != '=' {
			return t, errAt(t.pos, "unexpected '!' (did you mean '!='?)")
		}
		l.advance(c, 1)
		t.kind = tOp
	default:
		if r == utf8.RuneError && w == 1 {
			return t, errAt(t.pos, "invalid UTF-8 in query")
		}
		return t, errAt(t.pos, "unexpected character "+strconv.QuoteRune(r))
	}
	t.text = l.src[t.off:l.off]
	return t, nil
}

// ident reads a plain name: an optional @, a letter or _, then letters,
// digits, _ and dots.
func (l *lexer) ident(t token) (token, error) {
	r, w := l.peekRune()
	if r == '@' {
		l.advance(r, w)
		r, _ = l.peekRune()
		if !isIdentStart(r) {
			return t, errAt(t.pos, "'@' must be followed by a field name (write other names in backticks)")
		}
	}
	for l.off < len(l.src) {
		r, w := l.peekRune()
		if !isIdentPart(r) {
			break
		}
		l.advance(r, w)
	}
	t.kind = tIdent
	t.text = l.src[t.off:l.off]
	return t, nil
}

// quotedName reads a backtick-quoted name. It cannot contain a backtick or
// a line break.
func (l *lexer) quotedName(t token) (token, error) {
	l.advance('`', 1)
	start := l.off
	for {
		r, w := l.peekRune()
		if w == 0 || r == '\n' {
			return t, errAt(t.pos, "unterminated quoted name: missing closing '`'")
		}
		if r == '`' {
			break
		}
		l.advance(r, w)
	}
	t.val = l.src[start:l.off]
	l.advance('`', 1)
	t.text = l.src[t.off:l.off]
	if t.val == "" {
		return t, errAt(t.pos, "empty quoted name ``")
	}
	t.kind = tQIdent
	return t, nil
}

// stringLit reads a string in quote q. Escapes: \" \' \\ \n \t \r; any
// other backslash is kept with the character after it (so "\d" is the two
// characters \d). A string cannot span lines.
func (l *lexer) stringLit(t token, q byte) (token, error) {
	l.advance(rune(q), 1)
	var b strings.Builder
	for {
		r, w := l.peekRune()
		if w == 0 || r == '\n' {
			return t, errAt(t.pos, "unterminated string: missing closing "+string(q))
		}
		if r == rune(q) {
			l.advance(r, w)
			break
		}
		if r == '\\' {
			l.advance(r, w)
			e, ew := l.peekRune()
			if ew == 0 || e == '\n' {
				return t, errAt(t.pos, "unterminated string: missing closing "+string(q))
			}
			l.advance(e, ew)
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '"', '\'', '\\':
				b.WriteRune(e)
			default:
				b.WriteByte('\\')
				b.WriteString(l.src[l.off-ew : l.off])
			}
			continue
		}
		// Copy raw bytes so that invalid UTF-8 survives unchanged.
		b.WriteString(l.src[l.off : l.off+w])
		l.advance(r, w)
	}
	t.kind = tString
	t.text = l.src[t.off:l.off]
	t.val = b.String()
	return t, nil
}

// durationUnits maps every spelling AWS documents for bin() periods to the
// canonical unit. Spellings longer than one letter also take a plural s
// (see init).
var durationUnits = map[string]string{
	"ms": "ms", "msec": "ms", "millisecond": "ms",
	"s": "s", "sec": "s", "second": "s",
	"m": "m", "min": "m", "minute": "m",
	"h": "h", "hr": "h", "hour": "h",
	"d": "d", "day": "d",
	"w": "w", "week": "w",
	"mo": "mo", "mon": "mo", "month": "mo",
	"q": "q", "qtr": "q", "quarter": "q",
	"y": "y", "yr": "y", "year": "y",
}

func init() {
	for k, v := range durationUnits {
		if len(k) > 1 {
			if _, dup := durationUnits[k+"s"]; !dup {
				durationUnits[k+"s"] = v
			}
		}
	}
}

// number reads an integer, a decimal number, or a duration (an integer
// followed at once by a unit: 5m, 100ms, 2hrs).
func (l *lexer) number(t token) (token, error) {
	l.digits()
	isInt := true
	if r, _ := l.peekRune(); r == '.' {
		if l.off+1 < len(l.src) && l.src[l.off+1] >= '0' && l.src[l.off+1] <= '9' {
			isInt = false
			l.advance('.', 1)
			l.digits()
		}
	}
	numEnd := l.off
	unitStart := l.off
	for l.off < len(l.src) {
		r, w := l.peekRune()
		if !isIdentPart(r) {
			break
		}
		l.advance(r, w)
	}
	t.text = l.src[t.off:l.off]
	num := l.src[t.off:numEnd]
	if unitStart < l.off { // letters right after the number: a duration
		word := l.src[unitStart:l.off]
		if c := word[0]; c == '.' || c == '_' || c >= '0' && c <= '9' {
			return t, errAt(t.pos, "invalid number "+strconv.Quote(t.text)+" (write text such as IP addresses in quotes)")
		}
		unit, ok := durationUnits[word]
		if !ok {
			return t, errAt(t.pos, "invalid duration "+strconv.Quote(t.text)+
				": unit must be one of ms, s, m, h, d, w, mo, q, y (or msec, sec, min, hr, day, week, mon, month, qtr, quarter, yr, year)")
		}
		if !isInt {
			return t, errAt(t.pos, "invalid duration "+strconv.Quote(t.text)+": the number must be a whole number")
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n <= 0 {
			return t, errAt(t.pos, "invalid duration "+strconv.Quote(t.text)+": the number must be between 1 and 9223372036854775807")
		}
		t.kind = tDuration
		t.val = unit
		return t, nil
	}
	t.kind = tNumber
	return t, nil
}

func (l *lexer) digits() {
	for l.off < len(l.src) && l.src[l.off] >= '0' && l.src[l.off] <= '9' {
		l.advance(rune(l.src[l.off]), 1)
	}
}

// relexRegex turns the '/' token t, just read, into a regex literal: it
// reads on to the closing unescaped '/'. `\/` stands for '/'; other
// backslash pairs are kept as written. A regex cannot span lines.
func (l *lexer) relexRegex(t token) (token, error) {
	var b strings.Builder
	for {
		r, w := l.peekRune()
		if w == 0 || r == '\n' {
			return t, errAt(t.pos, "unterminated regular expression: missing closing '/'")
		}
		if r == '/' {
			l.advance(r, w)
			break
		}
		if r == '\\' {
			l.advance(r, w)
			e, ew := l.peekRune()
			if ew == 0 || e == '\n' {
				return t, errAt(t.pos, "unterminated regular expression: missing closing '/'")
			}
			if e != '/' {
				b.WriteByte('\\')
			}
			b.WriteString(l.src[l.off : l.off+ew])
			l.advance(e, ew)
			continue
		}
		b.WriteString(l.src[l.off : l.off+w])
		l.advance(r, w)
	}
	t.kind = tRegex
	t.text = l.src[t.off:l.off]
	t.val = b.String()
	return t, nil
}
