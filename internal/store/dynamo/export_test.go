package dynamo

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/flowguard/flowguard/internal/awstest"
)

// NewTables starts a dynalite for the test (awstest.StartDynalite) and
// returns a function that creates a new table in it and opens a store on
// the table: the package's tests' one way to a store on dynalite.
func NewTables(t testing.TB) func(t testing.TB) *Store {
	t.Helper()
	c := dynamodb.NewFromConfig(awstest.ClientConfig(awstest.StartDynalite(t)))
	var tables atomic.Int64
	return func(t testing.TB) *Store {
		t.Helper()
		table := fmt.Sprintf("flowguard-%d", tables.Add(1))
		if err := CreateTable(context.Background(), c, table); err != nil {
			t.Fatal(err)
		}
		return New(c, table)
	}
}
