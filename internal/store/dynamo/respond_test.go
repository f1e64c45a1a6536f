package dynamo_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/store"
	"github.com/flowguard/flowguard/internal/store/dynamo"
	"github.com/flowguard/flowguard/internal/store/storetest"
)

// TestResponsesContract runs the response contract tests (block claims,
// leases, outbox) on the DynamoDB store, each in its own table of one
// dynalite.
func TestResponsesContract(t *testing.T) {
	url := awstest.StartDynalite(t)
	var tables atomic.Int64
	storetest.RunResponses(t, func(t *testing.T) store.Responses {
		c := dynamodb.NewFromConfig(awstest.ClientConfig(url))
		table := fmt.Sprintf("flowguard-r%d", tables.Add(1))
		if err := dynamo.CreateTable(context.Background(), c, table); err != nil {
			t.Fatal(err)
		}
		return dynamo.New(c, table)
	})
}
