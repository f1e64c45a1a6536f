package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/flowguard/flowguard/internal/store"
	"github.com/flowguard/flowguard/internal/store/storetest"
)

// TestContract runs the store contract tests on the SQLite store.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Interface {
		s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "flowguard.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestResponsesContract runs the response contract tests (block claims,
// leases, outbox) on the SQLite store.
func TestResponsesContract(t *testing.T) {
	storetest.RunResponses(t, func(t *testing.T) store.Responses {
		s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "flowguard.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
