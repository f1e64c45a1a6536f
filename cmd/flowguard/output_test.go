package main

import (
	"strings"
	"testing"

	"github.com/flowguard/flowguard/internal/store"
)

// TestWriteJSONList: every list command prints an indented JSON array,
// [] (never null) when there is nothing to list.
func TestWriteJSONList(t *testing.T) {
	for _, tc := range []struct {
		name string
		rows []store.AuditEntry
		want string
	}{
		{"nil", nil, "[]\n"},
		{"empty", []store.AuditEntry{}, "[]\n"},
		{"one", []store.AuditEntry{{Seq: 7}}, "[\n  {\n    \"seq\": 7,"},
	} {
		var b strings.Builder
		if err := writeJSONList(&b, tc.rows); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(b.String(), tc.want) {
			t.Errorf("%s: %q, want it to start %q", tc.name, b.String(), tc.want)
		}
	}
}
