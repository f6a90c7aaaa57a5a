package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/server/store"
	"github.com/grayzone/grayzone/telemetry/batch"
)

// maxResponse bounds what the client reads of a response (an audit page of
// store.MaxLimit entries is far below it).
const maxResponse = 64 << 20

// APIError is a non-2xx answer from the server.
type APIError struct {
	Status  int    // HTTP status code
	Message string // the server's one-line {"error": ...}, or the status text
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// Client calls grayzone serve's API. Safe for concurrent use.
type Client struct {
	base  string
	token string
	// HTTP is the client used for requests; replace it to change timeouts
	// or transport.
	HTTP *http.Client
}

// NewClient returns a client for the server at baseURL (such as
// http://127.0.0.1:8080). token is sent as a bearer token when not empty.
func NewClient(baseURL, token string) *Client {
	return &Client{
		base:  strings.TrimRight(baseURL, "/"),
		token: token,
		// A safety net for a server that accepts and never answers; callers
		// bound individual calls with their context.
		HTTP: &http.Client{Timeout: 30 * time.Second},
	}
}

// BaseURL is the server address the client calls.
func (c *Client) BaseURL() string { return c.base }

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, nil, &out)
	return out, err
}

// Alarms is GET /v1/alarms; resource "" means all.
func (c *Client) Alarms(ctx context.Context, resource string) ([]Alarm, error) {
	var out []Alarm
	err := c.do(ctx, http.MethodGet, "/v1/alarms", query("resource", resource), nil, &out)
	return out, err
}

// Shifts is GET /v1/shifts.
func (c *Client) Shifts(ctx context.Context, f shift.ListFilter) ([]shift.Shift, error) {
	var out []shift.Shift
	err := c.do(ctx, http.MethodGet, "/v1/shifts", query("resource", f.Resource, "status", string(f.Status)), nil, &out)
	return out, err
}

// Shift is GET /v1/shifts/{id}.
func (c *Client) Shift(ctx context.Context, id string) (shift.Shift, error) {
	var out shift.Shift
	err := c.do(ctx, http.MethodGet, "/v1/shifts/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// StartShift is POST /v1/shifts.
func (c *Client) StartShift(ctx context.Context, req StartShiftRequest) (shift.Shift, error) {
	var out shift.Shift
	err := c.do(ctx, http.MethodPost, "/v1/shifts", nil, req, &out)
	return out, err
}

// UpdateShift is PATCH /v1/shifts/{id}.
func (c *Client) UpdateShift(ctx context.Context, id string, req UpdateShiftRequest) (shift.Shift, error) {
	var out shift.Shift
	err := c.do(ctx, http.MethodPatch, "/v1/shifts/"+url.PathEscape(id), nil, req, &out)
	return out, err
}

// CancelShift is POST /v1/shifts/{id}/cancel.
func (c *Client) CancelShift(ctx context.Context, id string) (shift.Shift, error) {
	var out shift.Shift
	err := c.do(ctx, http.MethodPost, "/v1/shifts/"+url.PathEscape(id)+"/cancel", nil, nil, &out)
	return out, err
}

// Audit is GET /v1/audit.
func (c *Client) Audit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	var out []store.AuditEntry
	err := c.do(ctx, http.MethodGet, "/v1/audit", query("resource", q.Resource,
		"after", itoa(q.After), "before", itoa(q.Before), "limit", itoa(int64(q.Limit))), nil, &out)
	return out, err
}

// Practices is GET /v1/practice; limit 0 means the server's default.
func (c *Client) Practices(ctx context.Context, resource string, limit int) ([]store.PracticeRun, error) {
	var out []store.PracticeRun
	err := c.do(ctx, http.MethodGet, "/v1/practice", query("resource", resource, "limit", itoa(int64(limit))), nil, &out)
	return out, err
}

// History returns a resource's timeline since the given time (zero: all kept).
func (c *Client) History(ctx context.Context, resource string, since time.Time) (History, error) {
	q := url.Values{"resource": {resource}}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	var out History
	err := c.do(ctx, http.MethodGet, "/v1/history", q, nil, &out)
	return out, err
}

// Decisions is GET /v1/decisions.
func (c *Client) Decisions(ctx context.Context) ([]Decision, error) {
	var out []Decision
	err := c.do(ctx, http.MethodGet, "/v1/decisions", nil, nil, &out)
	return out, err
}

// Approve is POST /v1/decisions/{id}/approve.
func (c *Client) Approve(ctx context.Context, id string) (Decision, error) {
	var out Decision
	err := c.do(ctx, http.MethodPost, "/v1/decisions/"+url.PathEscape(id)+"/approve", nil, nil, &out)
	return out, err
}

// Ingest is POST /v1/observations; it returns how many were accepted.
func (c *Client) Ingest(ctx context.Context, b batch.ObservationBatch) (int, error) {
	var out Accepted
	err := c.do(ctx, http.MethodPost, "/v1/observations", nil, b, &out)
	return out.Accepted, err
}

// query builds a query string from name/value pairs, leaving out empty and
// zero values (the server's defaults).
func query(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}

func itoa(n int64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err // a *url.Error, which already names the method and URL
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &APIError{Status: resp.StatusCode, Message: errorMessage(resp, data)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

// errorMessage is the server's {"error": ...}, or for a non-API answer (a
// proxy's HTML page) its first line or the status text.
func errorMessage(resp *http.Response, data []byte) string {
	var e ErrorBody
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		return e.Error
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	if line == "" || strings.HasPrefix(line, "<") || len(line) > 200 {
		return http.StatusText(resp.StatusCode)
	}
	return line
}

// IsStatus reports whether err is an *APIError with the given status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}
