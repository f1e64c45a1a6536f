// Package awstest holds in-process servers that speak AWS wire protocols
// for services no emulator covers here (EC2 network ACLs, WAFv2 IP sets).
// They keep state, answer in AWS's documented shapes and error codes, and
// have fault-injection hooks (throttling, failures after the change is
// applied, delays), so that code under test talks to them through the real
// AWS SDK for Go v2 with BaseEndpoint and static credentials.
package awstest

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// TB is the part of testing.TB the servers use.
type TB interface {
	Helper()
	Cleanup(func())
	Logf(format string, args ...any)
}

// Region is the region the servers' clients are configured for.
const Region = "us-east-1"

// ClientConfig returns an aws.Config that reaches url with static
// credentials and no SDK-level retries, so that the caller's own retry
// logic is what the tests exercise.
//
// Its connections are not kept idle longer than idleConnTimeout: the
// Node.js emulators (kinesalite, dynalite, fauxqs) close a connection
// idle for 5 seconds, and a request sent on it just then fails with
// "connection reset by peer", which no retry would hide here.
func ClientConfig(url string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(url),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.IdleConnTimeout = idleConnTimeout
		}),
	}
}

// idleConnTimeout is well under Node.js's keep-alive timeout (5 s).
const idleConnTimeout = 2 * time.Second

// faults are the fault-injection hooks common to the servers.
type faults struct {
	mu sync.Mutex
	// throttle fails the next n calls with the service's throttling error.
	throttle int
	// failAfter maps an action to how many of its next calls apply the
	// change and then answer 500, as a connection lost after the change
	// would look to the client.
	failAfter map[string]int
	// failBefore maps an action to how many of its next calls fail with
	// 500 without applying anything.
	failBefore map[string]int
	delay      time.Duration
	calls      map[string]int
	// unavailable fails every call with 500 until turned off.
	unavailable bool
}

func (f *faults) init() {
	f.failAfter = map[string]int{}
	f.failBefore = map[string]int{}
	f.calls = map[string]int{}
}

// Throttle makes the next n calls fail with the throttling error.
func (f *faults) Throttle(n int) {
	f.mu.Lock()
	f.throttle = n
	f.mu.Unlock()
}

// FailAfterApply makes the next n calls of action apply their change and
// then answer 500 InternalError: the client cannot know it succeeded.
func (f *faults) FailAfterApply(action string, n int) {
	f.mu.Lock()
	f.failAfter[action] = n
	f.mu.Unlock()
}

// FailBefore makes the next n calls of action answer 500 without applying
// anything.
func (f *faults) FailBefore(action string, n int) {
	f.mu.Lock()
	f.failBefore[action] = n
	f.mu.Unlock()
}

// SetUnavailable makes every call (of every action) answer 500
// InternalError without applying anything, as a service outage looks to
// the client, until turned off.
func (f *faults) SetUnavailable(on bool) {
	f.mu.Lock()
	f.unavailable = on
	f.mu.Unlock()
}

// Delay makes every call wait d before answering (0 turns it off).
func (f *faults) Delay(d time.Duration) {
	f.mu.Lock()
	f.delay = d
	f.mu.Unlock()
}

// Calls returns how many calls of action arrived (faulted ones included).
func (f *faults) Calls(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[action]
}

// fault is the decision for one call.
type fault int

const (
	noFault fault = iota
	faultThrottle
	faultBefore
	faultAfter
)

// enter counts a call, waits the configured delay, and says which fault,
// if any, to inject.
func (f *faults) enter(ctx context.Context, action string) fault {
	f.mu.Lock()
	f.calls[action]++
	d := f.delay
	var out fault
	switch {
	case f.unavailable:
		out = faultBefore
	case f.throttle > 0:
		f.throttle--
		out = faultThrottle
	case f.failBefore[action] > 0:
		f.failBefore[action]--
		out = faultBefore
	case f.failAfter[action] > 0:
		f.failAfter[action]--
		out = faultAfter
	}
	f.mu.Unlock()
	if d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	return out
}

// signed reports whether a request carries a SigV4 Authorization header.
func signed(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ")
}
