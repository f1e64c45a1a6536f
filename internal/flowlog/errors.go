package flowlog

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

const runeError = utf8.RuneError

func decodeRune(p []byte) (rune, int) { return utf8.DecodeRune(p) }

// LineError describes one skipped line or record: where it is and what was
// wrong with it.
type LineError struct {
	Source string // file or object name
	Line   int    // 1-based; 0 when the source has no lines
	Column int    // 1-based byte column of the bad field; 0 for the whole line
	Field  string // name of the bad field, if one
	Text   string // the offending text, if short
	Msg    string
}

func (e *LineError) Error() string {
	loc := e.Source
	if e.Line > 0 {
		loc += fmt.Sprintf(":%d", e.Line)
		if e.Column > 0 {
			loc += fmt.Sprintf(":%d", e.Column)
		}
	}
	msg := e.Msg
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Text != "" {
		t := e.Text
		if len(t) > 60 {
			t = t[:60] + "…"
		}
		msg += fmt.Sprintf(" (%q)", t)
	}
	return loc + ": " + msg
}

// Skipped counts skipped records and keeps the first few for the report. It
// is safe for concurrent use.
type Skipped struct {
	Keep  int // how many errors to keep; 0 means 10
	n     atomic.Int64
	mu    sync.Mutex
	first []*LineError
}

// Skip implements ErrorSink.
func (s *Skipped) Skip(e *LineError) {
	s.n.Add(1)
	keep := s.Keep
	if keep == 0 {
		keep = 10
	}
	s.mu.Lock()
	if len(s.first) < keep {
		s.first = append(s.first, e)
	}
	s.mu.Unlock()
}

// Count returns the number of skipped records.
func (s *Skipped) Count() int64 { return s.n.Load() }

// First returns the first errors kept, in the order they were reported.
func (s *Skipped) First() []*LineError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*LineError(nil), s.first...)
}
