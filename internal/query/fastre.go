package query

import (
	"encoding/binary"
	"math/bits"
	"regexp"
	"regexp/syntax"
	"strings"
	"unsafe"
)

// fastMatcher runs the regular expressions of parse that are a plain
// sequence — literals, character classes repeated, captures around them,
// anchors — without Go's regexp engine, whose backtracker spends about a
// microsecond on a flow log line. Such a pattern is matched left to right
// with no backtracking when every repeated class is followed by something
// it cannot match (as \S+ followed by a space): then the greedy match is
// the only one, and it is what regexp returns. A lazy .*? followed by a
// literal (parse's "glob * pattern") tries the literal's occurrences in
// order, within a budget of steps linear in the line's length. Whenever
// the answer is not certain — a byte that is not ASCII meets a class, the
// budget runs out — the line goes to regexp, so the results are always
// regexp's (a differential fuzz test checks it).
type fastMatcher struct {
	anchored bool // ^ at the start
	atEnd    bool // $ at the end
	items    []fmItem
	first    []byte // the literal the pattern starts with, to skip ahead to
}

// fmItem is one step of the sequence: a literal, or a class repeated
// min to max times (max -1: unbounded), greedily unless lazy.
type fmItem struct {
	lit   []byte
	class *[128]bool  // ASCII members; nil for a literal
	bytes *[256]uint8 // per byte: classOut, classIn, or classUnsure (not ASCII)
	// printable: the class holds every byte from '!' to DEL (as \S and
	// . do), so a run of it is skipped eight bytes at a time up to the
	// first byte that is a space, a control or not ASCII.
	printable bool
	// sep: the next item is a one-byte literal that opens and closes
	// no group (the space after \S+): step matches it with the class run
	// and skips it.
	sep      bool
	sepByte  byte
	min, max int
	lazy     bool
	open     []int // capture groups that start before this item
	close    []int // capture groups that end after this item
}

// compileFast returns a fastMatcher for re, or nil when re is not a plain
// sequence that can be matched without backtracking.
func compileFast(re *regexp.Regexp) *fastMatcher {
	t, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return nil
	}
	m := &fastMatcher{}
	var pendingOpen []int
	var walk func(t *syntax.Regexp) bool
	walk = func(t *syntax.Regexp) bool {
		switch t.Op {
		case syntax.OpConcat:
			for _, s := range t.Sub {
				if !walk(s) {
					return false
				}
			}
			return true
		case syntax.OpCapture:
			n := len(m.items)
			pendingOpen = append(pendingOpen, t.Cap)
			if !walk(t.Sub[0]) || len(m.items) == n {
				return false // an empty group: leave it to regexp
			}
			last := &m.items[len(m.items)-1]
			last.close = append(last.close, t.Cap)
			return true
		case syntax.OpLiteral:
			if t.Flags&syntax.FoldCase != 0 {
				return false
			}
			var b []byte
			for _, r := range t.Rune {
				if r >= 0x80 {
					return false
				}
				b = append(b, byte(r))
			}
			m.add(fmItem{lit: b}, &pendingOpen)
			return true
		case syntax.OpCharClass, syntax.OpAnyCharNotNL, syntax.OpAnyChar:
			return m.addClass(t, 1, 1, false, &pendingOpen)
		case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
			sub := t.Sub[0]
			if sub.Op != syntax.OpCharClass && sub.Op != syntax.OpAnyCharNotNL && sub.Op != syntax.OpAnyChar &&
				!(sub.Op == syntax.OpLiteral && len(sub.Rune) == 1 && sub.Flags&syntax.FoldCase == 0) {
				return false
			}
			lo, hi := 0, -1
			switch t.Op {
			case syntax.OpPlus:
				lo = 1
			case syntax.OpQuest:
				hi = 1
			case syntax.OpRepeat:
				lo, hi = t.Min, t.Max
			}
			return m.addClass(sub, lo, hi, t.Flags&syntax.NonGreedy != 0, &pendingOpen)
		case syntax.OpBeginText:
			if len(m.items) > 0 || m.anchored {
				return false
			}
			m.anchored = true
			return true
		case syntax.OpEndText:
			m.atEnd = true
			return true
		case syntax.OpEmptyMatch:
			return true
		}
		return false
	}
	if !walk(t) || len(m.items) == 0 || len(pendingOpen) > 0 {
		return nil
	}
	if !m.deterministic() {
		return nil
	}
	if it := m.items[0]; it.class == nil {
		m.first = it.lit
	}
	for i := range m.items[:len(m.items)-1] {
		it, next := &m.items[i], &m.items[i+1]
		it.sep = it.class != nil && !it.lazy && next.class == nil && len(next.lit) == 1 &&
			len(next.open) == 0 && len(next.close) == 0
		if it.sep {
			it.sepByte = next.lit[0]
		}
	}
	return m
}

// add appends an item, opening the groups that start before it.
func (m *fastMatcher) add(it fmItem, pendingOpen *[]int) {
	if m.atEnd {
		// Something after $: not a plain sequence.
		m.items = append(m.items, fmItem{lit: []byte{0}, class: nil, min: -1})
		return
	}
	it.open = append(it.open, *pendingOpen...)
	*pendingOpen = (*pendingOpen)[:0]
	m.items = append(m.items, it)
}

// addClass appends a class (or a one-rune literal) repeated lo to hi times.
func (m *fastMatcher) addClass(t *syntax.Regexp, lo, hi int, lazy bool, pendingOpen *[]int) bool {
	var set [128]bool
	switch t.Op {
	case syntax.OpLiteral:
		r := t.Rune[0]
		if r >= 0x80 {
			return false
		}
		set[r] = true
	case syntax.OpAnyChar:
		for i := range set {
			set[i] = true
		}
	case syntax.OpAnyCharNotNL:
		for i := range set {
			set[i] = i != '\n'
		}
	case syntax.OpCharClass:
		if t.Flags&syntax.FoldCase != 0 {
			return false
		}
		for i := 0; i+1 < len(t.Rune); i += 2 {
			for r := t.Rune[i]; r <= t.Rune[i+1] && r < 0x80; r++ {
				set[r] = true
			}
		}
	}
	var byByte [256]uint8
	for c := range byByte {
		switch {
		case c >= 0x80:
			byByte[c] = classUnsure
		case set[c]:
			byByte[c] = classIn
		}
	}
	printable := true
	for c := 0x21; c < 0x80; c++ {
		printable = printable && set[c]
	}
	m.add(fmItem{class: &set, bytes: &byByte, min: lo, max: hi, lazy: lazy, printable: printable}, pendingOpen)
	return true
}

// What a byte is to a class.
const (
	classOut uint8 = iota
	classIn
	classUnsure // not ASCII: regexp decides
)

// deterministic reports whether matching needs no backtracking: every item
// that may repeat a varying number of times is followed by an item it
// cannot match (its first byte is outside the class), or ends the pattern;
// a lazy item must be an any-character class followed by a literal.
func (m *fastMatcher) deterministic() bool {
	for i, it := range m.items {
		if it.min < 0 {
			return false // an item after $
		}
		if it.class == nil || it.min == it.max {
			if it.lazy {
				return false
			}
			continue
		}
		if i+1 == len(m.items) {
			if it.lazy {
				return false // a final lazy item matches its minimum: rare, leave it to regexp
			}
			continue
		}
		next := m.items[i+1]
		if it.lazy {
			if next.class != nil || !allASCII(it.class) || it.min != 0 || it.max != -1 {
				return false
			}
			continue
		}
		if next.class != nil {
			if next.min == 0 {
				return false
			}
			for c := range next.class {
				if next.class[c] && it.class[c] {
					return false
				}
			}
		} else if it.class[next.lit[0]] {
			return false
		}
	}
	return true
}

func allASCII(set *[128]bool) bool {
	for _, in := range set {
		if !in {
			return false
		}
	}
	return true
}

// matchResult is what the matcher found on a line; unsure means regexp
// decides.
type matchResult int8

const (
	noMatch matchResult = iota
	matched
	unsure
)

// match finds the leftmost match in s and fills loc with the start and end
// of every group (-1 for a group that did not take part), as
// regexp.FindStringSubmatchIndex does.
func (m *fastMatcher) match(s string, loc []int) matchResult {
	budget := 4*len(s) + 64
	if m.anchored {
		return m.matchAt(s, 0, loc, &budget)
	}
	for start := 0; start <= len(s); start++ {
		if m.first != nil {
			i := strings.Index(s[start:], bytesToString(m.first))
			if i < 0 {
				return noMatch
			}
			start += i
		}
		switch r := m.matchAt(s, start, loc, &budget); r {
		case matched, unsure:
			return r
		}
		if start < len(s) && s[start] >= 0x80 {
			return unsure // not at a rune boundary any more
		}
	}
	return noMatch
}

// matchAt matches the whole sequence starting at start.
func (m *fastMatcher) matchAt(s string, start int, loc []int, budget *int) matchResult {
	for i := range loc {
		loc[i] = -1
	}
	r := m.step(s, 0, start, loc, budget)
	if r == matched {
		loc[0] = start
	}
	return r
}

// step matches items[k:] at position p; loc[1] gets the end.
func (m *fastMatcher) step(s string, k, p int, loc []int, budget *int) matchResult {
	for ; k < len(m.items); k++ {
		it := &m.items[k]
		for _, g := range it.open {
			loc[2*g] = p
		}
		*budget--
		if *budget < 0 {
			return unsure
		}
		switch {
		case it.class == nil:
			if len(it.lit) == 1 { // the common separator: no call
				if p >= len(s) || s[p] != it.lit[0] {
					return noMatch
				}
				p++
				break
			}
			if !strings.HasPrefix(s[p:], bytesToString(it.lit)) {
				return noMatch
			}
			p += len(it.lit)
		case it.lazy:
			// .*? then a literal: each occurrence of the literal in
			// turn, the nearest first.
			lit := bytesToString(m.items[k+1].lit)
			for q := p; ; q++ {
				j := strings.Index(s[q:], lit)
				if j < 0 {
					return noMatch
				}
				q += j
				*budget -= j
				for _, g := range it.close {
					loc[2*g+1] = q
				}
				// A failed try leaves no stale group: every group of a
				// plain sequence is set again on the way that matches.
				switch r := m.step(s, k+1, q, loc, budget); r {
				case matched, unsure:
					return r
				}
			}
		default:
			end := len(s)
			if it.max >= 0 && it.max < end-p {
				end = p + it.max
			}
			cls, q := it.bytes, p
			for q < end {
				if it.printable {
					q = skipPrintable(s, q, end)
					if q == end {
						break
					}
				}
				k := cls[s[q]]
				if k != classIn {
					if k == classUnsure {
						return unsure
					}
					break
				}
				q++
			}
			*budget -= q - p
			if q-p < it.min {
				return noMatch
			}
			p = q
			if it.sep {
				// The one-byte literal that follows, here.
				for _, g := range it.close {
					loc[2*g+1] = p
				}
				if p >= len(s) || s[p] != it.sepByte {
					return noMatch
				}
				p++
				k++
				continue
			}
		}
		for _, g := range it.close {
			loc[2*g+1] = p
		}
	}
	if m.atEnd && p != len(s) {
		return noMatch
	}
	loc[1] = p
	return matched
}

const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// skipPrintable returns the first position from q before end whose byte is
// not in '!'..DEL (a space, a control, a byte that is not ASCII), or end:
// eight bytes at a time, then byte by byte.
func skipPrintable(s string, q, end int) int {
	for q+8 <= end {
		x := binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[q:]), 8))
		// High bit of each byte below 0x21 (the lowest flagged byte is
		// exact: a borrow only comes from a byte below it) or not ASCII.
		stop := (x-0x21*lo8)&^x&hi8 | x&hi8
		if stop != 0 {
			return q + bits.TrailingZeros64(stop)/8
		}
		q += 8
	}
	for q < end && s[q] > 0x20 && s[q] < 0x80 {
		q++
	}
	return q
}
