// Package webhook posts grayzone's events to an HTTP endpoint as CloudEvents
// 1.0 in structured mode, signed so the receiver can check who sent them and
// refuse replays.
//
// The request:
//
//	POST <url>
//	Content-Type: application/cloudevents+json; charset=utf-8
//	Idempotency-Key: <event id>            (also the CloudEvent's id)
//	Grayzone-Timestamp: <unix seconds>
//	Grayzone-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// The signed string is the timestamp header's value, a full stop, and the
// request body byte for byte. A receiver recomputes it with the endpoint's
// secret, compares in constant time, refuses a timestamp older than its
// tolerance (a replay), and dedupes on the event id (a retry): Verify does
// the first three.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/grayzone/grayzone/notify"
	"github.com/grayzone/grayzone/notify/event"
)

// Header names and the content type.
const (
	HeaderTimestamp   = "Grayzone-Timestamp"
	HeaderSignature   = "Grayzone-Signature"
	HeaderIdempotency = "Idempotency-Key"
	ContentType       = "application/cloudevents+json; charset=utf-8"
	// SignatureVersion prefixes the signature, so the scheme can change
	// without breaking receivers of the old one.
	SignatureVersion = "v1"
)

// CloudEvent is the structured-mode envelope (CloudEvents 1.0).
type CloudEvent struct {
	SpecVersion     string      `json:"specversion"`
	ID              string      `json:"id"`
	Source          string      `json:"source"`
	Type            string      `json:"type"`
	Subject         string      `json:"subject,omitempty"`
	Time            time.Time   `json:"time"`
	DataContentType string      `json:"datacontenttype"`
	DataSchema      string      `json:"dataschema,omitempty"`
	Data            event.Event `json:"data"`
}

// Envelope wraps e as a CloudEvent from source.
func Envelope(source string, e event.Event) CloudEvent {
	subject := e.Resource
	if e.Zone != "" {
		subject += "/" + e.Zone
	}
	return CloudEvent{SpecVersion: "1.0", ID: e.ID, Source: source, Type: e.Type(), Subject: subject,
		Time: e.At.UTC(), DataContentType: "application/json", Data: e}
}

// Notifier posts to one webhook endpoint.
type Notifier struct {
	URL    string
	Secret []byte
	// Source is the CloudEvents source: the dashboard's URL, or "grayzone".
	Source string
	Client *http.Client // nil: http.DefaultClient
	Now    func() time.Time
}

var _ notify.Notifier = (*Notifier)(nil)

// Sign returns the Grayzone-Signature value for body sent at ts.
func Sign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return SignatureVersion + "=" + hex.EncodeToString(m.Sum(nil))
}

// Notify implements notify.Notifier.
func (n *Notifier) Notify(ctx context.Context, e event.Event) error {
	body, err := json.Marshal(Envelope(n.Source, e))
	if err != nil {
		return notify.Permanent(fmt.Errorf("webhook: encode %s: %w", e.ID, err))
	}
	now := time.Now
	if n.Now != nil {
		now = n.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL, bytes.NewReader(body))
	if err != nil {
		return notify.Permanent(fmt.Errorf("webhook: %w", err))
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set(HeaderIdempotency, e.ID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(n.Secret, ts, body))
	c := n.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: post %s: %w", e.ID, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return notify.StatusError("webhook", resp.StatusCode, msg)
}

// Errors of Verify.
var (
	ErrNoSignature = errors.New("webhook: no signature or timestamp header")
	ErrSignature   = errors.New("webhook: signature does not match")
	ErrStale       = errors.New("webhook: timestamp outside the tolerance (a replay?)")
)

// DefaultTolerance is how far a timestamp may be from the receiver's clock.
const DefaultTolerance = 5 * time.Minute

// Verify checks a received request's signature and timestamp: h is the
// request's header, body its body as read. Receivers then dedupe on the
// CloudEvent's id (also the Idempotency-Key header) to drop retries.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts, sig := h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if ts == "" || sig == "" {
		return ErrNoSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad timestamp %q", ErrNoSignature, ts)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	if !hmac.Equal([]byte(sig), []byte(Sign(secret, ts, body))) {
		return ErrSignature
	}
	return nil
}
