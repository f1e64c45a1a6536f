package main

import (
	"encoding/json"
	"io"
)

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeJSONList prints rows as an indented JSON array: [] when there are
// none, never null.
func writeJSONList[T any](w io.Writer, rows []T) error {
	if rows == nil {
		rows = []T{}
	}
	return writeJSON(w, rows)
}
