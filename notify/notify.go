// Package notify delivers grayzone's events (notify/event) to the people who
// must hear of them: Alertmanager (notify/alertmanager), which routes to
// Slack, PagerDuty and Opsgenie with silences and inhibition, and signed
// CloudEvents webhooks (notify/webhook) for everything else.
//
// Delivery is at least once and in order per endpoint: every event is first
// written to a durable outbox (server/store, in the same transaction as the
// audit entry it belongs to); a Dispatcher, running in its own goroutines
// at the edge and only on the leader, sends each endpoint's items oldest
// first, retrying with exponential back-off (Retry) until one is delivered
// or its age passes the bound. A down endpoint therefore never delays a
// tick or a shift, and holds back only its own later items.
package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/grayzone/grayzone/notify/event"
)

// Notifier sends one event to one endpoint. An error means "not delivered,
// try again" unless it is Permanent.
type Notifier interface {
	Notify(ctx context.Context, e event.Event) error
}

// permanent marks an error that retrying cannot fix (the endpoint refused
// the request as malformed or unauthorized).
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so the Dispatcher gives up on the item at once.
func Permanent(err error) error { return permanent{err} }

// IsPermanent reports whether err was wrapped by Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Retry is the one retry policy of every endpoint: the n-th failed attempt
// waits Initial·2^(n-1), capped at Max; an item still undelivered GiveUpAfter
// after it was written is given up (counted and kept in the outbox as failed).
type Retry struct {
	Initial     time.Duration
	Max         time.Duration
	GiveUpAfter time.Duration
}

// DefaultRetry: 1s, 2s, 4s, ... 5m, for a day.
var DefaultRetry = Retry{Initial: time.Second, Max: 5 * time.Minute, GiveUpAfter: 24 * time.Hour}

// Backoff is how long to wait after the attempts-th failed attempt (1-based).
func (r Retry) Backoff(attempts int) time.Duration {
	d := r.Initial
	for i := 1; i < attempts && d < r.Max; i++ {
		d *= 2
	}
	return min(d, r.Max)
}

// Item is one event waiting in the outbox for one endpoint.
type Item struct {
	Seq      int64 // outbox order
	Endpoint string
	Event    event.Event
	Created  time.Time
	Attempts int
	NextAt   time.Time // not before
}

// Outbox is the durable queue the Dispatcher drains (server/store.DB).
// Every write is fenced by the store: a deposed leader's marks fail.
type Outbox interface {
	// Pending returns the endpoint's undelivered items, oldest first.
	Pending(ctx context.Context, endpoint string, limit int) ([]Item, error)
	Delivered(ctx context.Context, seq int64, at time.Time) error
	Retry(ctx context.Context, seq int64, attempts int, next time.Time, lastErr string) error
	GiveUp(ctx context.Context, seq int64, at time.Time, lastErr string) error
}

// Endpoint is a named notifier; the name keys its outbox items.
type Endpoint struct {
	Name     string
	Kind     string // alertmanager or webhook
	Notifier Notifier
	// Accepts says which events go to it (nil: all).
	Accepts func(event.Event) bool
}

// StatusError turns an endpoint's response status into the Dispatcher's
// verdict: 2xx delivered (nil); 408, 429 and 5xx retried; any other 4xx
// Permanent (the receiver refuses this request and would refuse it again).
func StatusError(who string, code int, body []byte) error {
	if code >= 200 && code < 300 {
		return nil
	}
	err := fmt.Errorf("%s: HTTP %d: %s", who, code, strings.TrimSpace(string(body)))
	if code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests {
		return Permanent(err)
	}
	return err
}

// Resender is a Notifier that repeats its state while it lasts
// (Alertmanager's firing alerts); the Dispatcher calls Resend every
// ResendInterval while leading.
type Resender interface {
	Resend(ctx context.Context) error
	ResendInterval() time.Duration
}
