package source

import (
	"bytes"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A hand-written reader of the subscription payload's JSON, for the
// stream sources' hot path: it appends each log event's message to a
// buffer as a line, with no allocation per event. It accepts exactly the
// JSON that encoding/json accepts for the Subscription shape (a fuzz test
// holds the two to the same answers).

var errSubJSON = errors.New("not a CloudWatch Logs subscription payload: bad JSON")

type subScanner struct {
	p       []byte
	i       int
	err     error
	scratch []byte // skipped strings and keys
}

func (s *subScanner) fail() { s.err = errSubJSON }

func (s *subScanner) ws() {
	for s.i < len(s.p) {
		switch s.p[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips white space and returns the next byte, or 0 at the end.
func (s *subScanner) next() byte {
	s.ws()
	if s.i >= len(s.p) {
		return 0
	}
	return s.p[s.i]
}

func (s *subScanner) expect(c byte) bool {
	if s.next() != c {
		s.fail()
		return false
	}
	s.i++
	return true
}

// open reads the start of an object or array (c is '{' or '['; end its
// closing byte) and reports whether a first member follows. With more, it
// makes every container's loop:
//
//	for ok := s.open('{', '}'); ok; ok = s.more('}') { k := s.key(); … }
func (s *subScanner) open(c, end byte) bool {
	if !s.expect(c) {
		return false
	}
	if s.next() == end {
		s.i++
		return false
	}
	return true
}

// more reads what follows a member of a container closed by end, and
// reports whether another member follows; false at the end or on an
// error.
func (s *subScanner) more(end byte) bool {
	if s.err != nil {
		return false
	}
	if s.next() == ',' {
		s.i++
		return true
	}
	s.expect(end)
	return false
}

// str reads a JSON string and appends its value to dst.
func (s *subScanner) str(dst []byte) []byte {
	if !s.expect('"') {
		return dst
	}
	for s.i < len(s.p) {
		start := s.i
		for s.i < len(s.p) && s.p[s.i] != '"' && s.p[s.i] != '\\' && s.p[s.i] >= 0x20 && s.p[s.i] < utf8.RuneSelf {
			s.i++
		}
		dst = append(dst, s.p[start:s.i]...)
		if s.i >= len(s.p) {
			break
		}
		c := s.p[s.i]
		switch {
		case c == '"':
			s.i++
			return dst
		case c < 0x20:
			s.fail()
			return dst
		case c >= utf8.RuneSelf: // invalid UTF-8 becomes U+FFFD, as encoding/json does
			r, n := utf8.DecodeRune(s.p[s.i:])
			dst = utf8.AppendRune(dst, r)
			s.i += n
		default: // backslash
			if s.i+1 >= len(s.p) {
				s.fail()
				return dst
			}
			e := s.p[s.i+1]
			s.i += 2
			switch e {
			case '"', '\\', '/':
				dst = append(dst, e)
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r, ok := s.hex4()
				if !ok {
					return dst
				}
				if utf16.IsSurrogate(r) {
					r2 := utf8.RuneError
					save := s.i
					if s.i+1 < len(s.p) && s.p[s.i] == '\\' && s.p[s.i+1] == 'u' {
						s.i += 2
						if x, ok := s.hex4(); ok {
							r2 = x
						} else {
							return dst
						}
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
					} else {
						r = utf8.RuneError
						s.i = save
					}
				}
				dst = utf8.AppendRune(dst, r)
			default:
				s.fail()
				return dst
			}
		}
	}
	s.fail()
	return dst
}

func (s *subScanner) hex4() (rune, bool) {
	if s.i+4 > len(s.p) {
		s.fail()
		return 0, false
	}
	v, err := strconv.ParseUint(string(s.p[s.i:s.i+4]), 16, 32)
	if err != nil {
		s.fail()
		return 0, false
	}
	s.i += 4
	return rune(v), true
}

// skip skips one JSON value of any kind.
func (s *subScanner) skip(depth int) {
	if depth > 10000 { // encoding/json's limit

		s.fail()
		return
	}
	switch c := s.next(); {
	case c == '"':
		s.scratch = s.str(s.scratch[:0])
	case c == '{':
		for ok := s.open('{', '}'); ok; ok = s.more('}') {
			if s.key(); s.err != nil {
				return
			}
			s.skip(depth + 1)
		}
	case c == '[':
		for ok := s.open('[', ']'); ok; ok = s.more(']') {
			s.skip(depth + 1)
		}
	case c == 't':
		s.lit("true")
	case c == 'f':
		s.lit("false")
	case c == 'n':
		s.lit("null")
	case c == '-' || c >= '0' && c <= '9':
		s.number()
	default:
		s.fail()
	}
}

func (s *subScanner) lit(w string) {
	if len(s.p)-s.i < len(w) || string(s.p[s.i:s.i+len(w)]) != w {
		s.fail()
		return
	}
	s.i += len(w)
}

// number reads a JSON number and returns its text.
func (s *subScanner) number() []byte {
	start := s.i
	if s.i < len(s.p) && s.p[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(s.p) && s.p[s.i] >= '0' && s.p[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(s.p) && s.p[s.i] == '0' {
		s.i++
	} else if digits() == 0 {
		s.fail()
		return nil
	}
	if s.i < len(s.p) && s.p[s.i] == '.' {
		s.i++
		if digits() == 0 {
			s.fail()
			return nil
		}
	}
	if s.i < len(s.p) && (s.p[s.i] == 'e' || s.p[s.i] == 'E') {
		s.i++
		if s.i < len(s.p) && (s.p[s.i] == '+' || s.p[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			s.fail()
			return nil
		}
	}
	return s.p[start:s.i]
}

// key reads an object key and the colon after it; the key is valid
// until the next call.
func (s *subScanner) key() []byte {
	s.scratch = s.str(s.scratch[:0])
	s.expect(':')
	return s.scratch
}

// scanSubscription reads a decompressed subscription payload, appending
// each log event's message to dst as a line when the payload is a
// DATA_MESSAGE. It returns the message type and the newest event time.
func scanSubscription(dst, p []byte) (out []byte, messageType string, newest int64, err error) {
	s := &subScanner{p: p}
	var mt []byte
	haveType := false
	eventsAt := -1
	for ok := s.open('{', '}'); ok; ok = s.more('}') {
		k := s.key()
		if s.err != nil {
			break
		}
		switch {
		case bytes.EqualFold(k, []byte("messageType")): // keys match as encoding/json matches them
			if s.next() == 'n' {
				s.lit("null")
			} else {
				mt = s.str(mt[:0])
				haveType = true
			}
		case bytes.EqualFold(k, []byte("logEvents")):
			eventsAt = s.i
			s.skip(0) // read once the type is known
		default:
			s.skip(0)
		}
	}
	if s.err != nil {
		return dst, "", 0, s.err
	}
	messageType = string(mt)
	if !haveType || messageType != "DATA_MESSAGE" || eventsAt < 0 {
		return dst, messageType, 0, nil
	}
	s.i = eventsAt
	if s.next() == 'n' {
		return dst, messageType, 0, nil
	}
	for ok := s.open('[', ']'); ok; ok = s.more(']') {
		if s.next() == 'n' {
			s.lit("null")
			continue
		}
		var ts int64
		eventAt := len(dst)
		for ok := s.open('{', '}'); ok; ok = s.more('}') {
			k := s.key()
			if s.err != nil {
				break
			}
			switch {
			case bytes.EqualFold(k, []byte("message")):
				dst = dst[:eventAt] // the last of repeated keys counts
				if s.next() == 'n' {
					s.lit("null")
					break
				}
				dst = s.str(dst)
				if len(dst) == eventAt {
					break // an empty message is no record
				}
				for i := eventAt; i < len(dst); i++ {
					if dst[i] == '\n' || dst[i] == '\r' {
						dst[i] = ' '
					}
				}
				dst = append(dst, '\n')
			case bytes.EqualFold(k, []byte("timestamp")):
				if s.next() == 'n' {
					s.lit("null")
					ts = 0
					break
				}
				num := s.number()
				if s.err == nil {
					v, perr := strconv.ParseInt(string(num), 10, 64)
					if perr != nil {
						s.fail()
					}
					ts = v
				}
			default:
				s.skip(0)
			}
		}
		newest = max(newest, ts)
	}
	if s.err != nil {
		return dst, "", 0, s.err
	}
	return dst, messageType, newest, nil
}
