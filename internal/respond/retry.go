package respond

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Clock tells the time; tests replay time with a fake one.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// FakeClock is a Clock that moves only when told; safe for concurrent use.
type FakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewFakeClock returns a clock stopped at t.
func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{t: t} }

// Now returns the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// SleepFunc waits d or until ctx is done.
type SleepFunc func(ctx context.Context, d time.Duration) error

// Sleep is the real SleepFunc.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retrier runs an action with bounded attempts and exponential backoff
// with jitter.
type retrier struct {
	attempts int
	initial  time.Duration
	max      time.Duration
	timeout  time.Duration
	sleep    SleepFunc
	rand     func() float64 // in [0, 1)
}

func newRetrier(c RetryConfig, sleep SleepFunc, rnd func() float64) *retrier {
	r := &retrier{attempts: c.MaxAttempts, initial: time.Duration(c.Initial), max: time.Duration(c.Max), timeout: time.Duration(c.Timeout), sleep: sleep, rand: rnd}
	if r.attempts <= 0 {
		r.attempts = 5
	}
	if r.initial <= 0 {
		r.initial = 200 * time.Millisecond
	}
	if r.max <= 0 {
		r.max = 20 * time.Second
	}
	if r.timeout <= 0 {
		r.timeout = 30 * time.Second
	}
	if r.sleep == nil {
		r.sleep = Sleep
	}
	if r.rand == nil {
		r.rand = rand.Float64
	}
	return r
}

// backoff returns the wait before attempt n+1 (n from 1): the exponential
// step initial×2^(n-1), capped at max, jittered uniformly in [step/2, step).
func (r *retrier) backoff(n int) time.Duration {
	step := r.initial
	for i := 1; i < n && step < r.max; i++ {
		step *= 2
	}
	step = min(step, r.max)
	return step/2 + time.Duration(r.rand()*float64(step/2))
}

// do runs fn until it succeeds, fails without retry, or the attempts run
// out. It returns the number of attempts made and the last error; retry
// is true when the last failure was retryable (so a later run should try
// again).
func (r *retrier) do(ctx context.Context, fn func(ctx context.Context) (bool, error)) (attempts int, retry bool, err error) {
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, r.timeout)
		retry, err = fn(actx)
		timedOut := actx.Err() != nil && ctx.Err() == nil
		cancel()
		if err == nil {
			return n, false, nil
		}
		if timedOut || IsRetryable(err) {
			retry = true
		}
		if !retry || n >= r.attempts || ctx.Err() != nil {
			return n, retry, err
		}
		if serr := r.sleep(ctx, r.backoff(n)); serr != nil {
			return n, true, err
		}
	}
}

// Throttling and transient error codes of EC2, WAFv2 and AWS in general.
var retryableCodes = map[string]bool{
	"RequestLimitExceeded":          true, // EC2 throttling
	"Throttling":                    true,
	"ThrottlingException":           true,
	"TooManyRequestsException":      true,
	"RequestThrottled":              true,
	"WAFOptimisticLockException":    true, // re-read and try again
	"WAFInternalErrorException":     true,
	"WAFUnavailableEntityException": true,
	"InternalError":                 true,
	"InternalFailure":               true,
	"ServiceUnavailable":            true,
	"Unavailable":                   true,
	"RequestTimeout":                true,
}

// IsRetryable reports whether an AWS or network error is worth another
// try: throttling, optimistic-lock conflicts, 5xx answers and timeouts.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && retryableCodes[ae.ErrorCode()] {
		return true
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && (re.HTTPStatusCode() >= 500 || re.HTTPStatusCode() == 429) {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

// errorCode returns the AWS error code of err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
