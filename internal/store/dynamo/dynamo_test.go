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

// TestContract runs the store contract tests on the DynamoDB store, each
// in its own table of one dynalite.
func TestContract(t *testing.T) {
	url := awstest.StartDynalite(t)
	var tables atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Interface {
		c := dynamodb.NewFromConfig(awstest.ClientConfig(url))
		table := fmt.Sprintf("flowguard-%d", tables.Add(1))
		if err := dynamo.CreateTable(context.Background(), c, table); err != nil {
			t.Fatal(err)
		}
		return dynamo.New(c, table)
	})
}
