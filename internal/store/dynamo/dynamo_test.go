package dynamo_test

import (
	"testing"

	"github.com/flowguard/flowguard/internal/store"
	"github.com/flowguard/flowguard/internal/store/dynamo"
	"github.com/flowguard/flowguard/internal/store/storetest"
)

// TestContract runs the store contract tests (storetest.Run) and the
// response contract tests (storetest.RunResponses: block claims, leases,
// outbox) on the DynamoDB store, each in its own table of one dynalite.
func TestContract(t *testing.T) {
	table := dynamo.NewTables(t)
	t.Run("Detections", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Interface { return table(t) })
	})
	t.Run("Responses", func(t *testing.T) {
		storetest.RunResponses(t, func(t *testing.T) store.Responses { return table(t) })
	})
}
