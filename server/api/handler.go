package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grayzone/grayzone/internal/bearer"
	"github.com/grayzone/grayzone/internal/loglimit"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/internal/strictjson"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/store"
	"github.com/grayzone/grayzone/telemetry/batch"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/middleware"
)

// Body limits. Shift and decision bodies are a few hundred bytes; the cap
// only keeps a bad client from making the server buffer much.
const (
	MaxObservationBytes = 8 << 20
	maxSmallBody        = 64 << 10
)

// Options configures NewHandler.
type Options struct {
	// Tokens returns the valid bearer tokens. It is called on every
	// authenticated request, so a rotated token takes effect at once. Nil or
	// empty means no request can authenticate: mutations are refused. A
	// token's name, never its secret, is the actor recorded in shifts and
	// the audit log.
	Tokens func() []config.Token
	// OpenReads lets GET requests through without a token.
	OpenReads bool
	// Log receives one debug line per request and warnings for refused
	// tokens and failed requests; nil discards.
	Log *slog.Logger
	// Now is the clock for observation timestamps; nil means time.Now.
	Now func() time.Time
	// Metrics, when set, gets grayzone_api_requests_total{route,code}.
	Metrics *prometheus.Registry
}

type handler struct {
	b    Backend
	opts Options
	log  *slog.Logger
	now  func() time.Time
	mux  *http.ServeMux
	reqs *prometheus.CounterVec // nil without Options.Metrics
	// routes are the registered patterns: the only values of the metrics'
	// route label, so a client cannot mint label values.
	routes map[string]bool
	// refused logs refused requests, which anyone can cause: rate-limited.
	refused *loglimit.Limiter
}

// NewHandler returns the HTTP JSON API over b.
func NewHandler(b Backend, opts Options) http.Handler {
	h := &handler{b: b, opts: opts, log: opts.Log, now: opts.Now, mux: http.NewServeMux(), routes: map[string]bool{}}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.refused = loglimit.New(h.log)
	if opts.Metrics != nil {
		h.reqs = registerCounter(opts.Metrics, h.log)
	}

	read, write := h.reader, h.writer
	h.handle("GET /healthz", h.healthz)
	h.handle("GET /v1/status", read(h.status))
	h.handle("GET /v1/alarms", read(h.alarms))
	h.handle("GET /v1/shifts", read(h.listShifts))
	operate := func(f func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
		return write(bearer.Operate, f)
	}
	h.handle("POST /v1/shifts", operate(h.startShift))
	h.handle("GET /v1/shifts/{id}", read(h.getShift))
	h.handle("PATCH /v1/shifts/{id}", operate(h.updateShift))
	h.handle("POST /v1/shifts/{id}/cancel", operate(h.cancelShift))
	h.handle("DELETE /v1/shifts/{id}", operate(h.cancelShift))
	h.handle("GET /v1/audit", read(h.audit))
	h.handle("GET /v1/practice", read(h.practices))
	h.handle("GET /v1/decisions", read(h.decisions))
	h.handle("POST /v1/decisions/{id}/approve", operate(h.approve))
	h.handle("POST /v1/observations", write(bearer.Ingest, h.ingest))
	h.handle("GET /v1/history", read(h.history))
	return h
}

// history serves GET /v1/history?resource=R[&since=RFC3339].
func (h *handler) history(w http.ResponseWriter, r *http.Request) {
	if !h.query(w, r, "resource", "since") {
		return
	}
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since: %q is not an RFC 3339 time", v))
			return
		}
		since = t
	}
	if q.Get("resource") == "" {
		writeError(w, http.StatusBadRequest, "resource: required")
		return
	}
	hist, err := h.b.History(r.Context(), q.Get("resource"), since)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, hist)
}

func (h *handler) handle(pattern string, f http.HandlerFunc) {
	h.routes[pattern] = true
	h.mux.HandleFunc(pattern, f)
}

// registerCounter registers the request counter, reusing an identical one
// already registered (a second handler on the same registry).
func registerCounter(reg *prometheus.Registry, log *slog.Logger) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "grayzone_api_requests_total",
		Help: "HTTP API requests by route pattern and status code.",
	}, []string{"route", "code"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		log.Warn("api: request metrics disabled", "err", err)
		return nil
	}
	return c
}

// ServeHTTP routes the request, answering unknown routes and methods with
// JSON errors instead of the mux's plain text.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &middleware.StatusWriter{ResponseWriter: w}
	// These are live operational data: no cache may serve them stale.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")

	route := "unmatched"
	if hd, pattern := h.mux.Handler(r); pattern != "" {
		if h.routes[pattern] {
			route = pattern
		} else {
			route = "redirect" // the mux cleaning a path such as /v1//status
		}
		h.mux.ServeHTTP(sw, r)
	} else {
		// The mux's fallback sets Allow for a 405; run it into a scratch
		// writer to learn which of 404 or 405 it is.
		var fb fallbackWriter
		hd.ServeHTTP(&fb, r)
		if allow := fb.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		switch fb.code {
		case http.StatusMethodNotAllowed:
			writeError(sw, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, fb.header.Get("Allow")))
		default:
			writeError(sw, http.StatusNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
		}
	}

	code := sw.Status()
	if h.reqs != nil {
		h.reqs.WithLabelValues(route, strconv.Itoa(code)).Inc()
	}
	h.log.LogAttrs(r.Context(), slog.LevelDebug, "api request",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", route),
		slog.Int("code", code), slog.Duration("took", time.Since(start)), slog.String("remote", r.RemoteAddr))
}

// fallbackWriter captures what the mux's not-found/not-allowed handler says.
type fallbackWriter struct {
	header http.Header
	code   int
}

func (w *fallbackWriter) Header() http.Header {
	if w.header == nil {
		w.header = http.Header{}
	}
	return w.header
}
func (w *fallbackWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *fallbackWriter) Write(b []byte) (int, error) { return len(b), nil }

// reader wraps a GET handler: open when OpenReads, else it needs a token
// with the read scope.
func (h *handler) reader(next func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.opts.OpenReads {
			if _, ok := h.authorize(w, r, bearer.Read); !ok {
				return
			}
		}
		next(w, r)
	}
}

// writer wraps a mutation: it needs a token with the scope, checked before
// the body is read, so an unauthenticated request changes nothing. The
// handler gets the actor to record as StartedBy/By.
func (h *handler) writer(scope bearer.Scope, next func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		actor, ok := h.authorize(w, r, scope)
		if !ok {
			return
		}
		next(w, r, actor)
	}
}

// authorize checks the bearer token and its scope; on failure it has
// written the 401 or 403.
func (h *handler) authorize(w http.ResponseWriter, r *http.Request, need bearer.Scope) (actor string, ok bool) {
	var tokens []config.Token
	if h.opts.Tokens != nil {
		tokens = h.opts.Tokens()
	}
	t, outcome, why := bearer.Check(r.Header.Get("Authorization"), tokens, need)
	switch outcome {
	case bearer.OK:
	case bearer.Forbidden:
		h.refused.Warn(r.Context(), "api: token lacks the scope", slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("remote", r.RemoteAddr), slog.String("token", t.Name), slog.String("need", need.String()))
		writeError(w, http.StatusForbidden, why)
		return "", false
	default:
		h.refuse(w, r, why)
		return "", false
	}
	if t.Name == "" {
		return "api", true // a token configured without a name
	}
	return t.Name, true
}

// Authenticate checks r's "Authorization: Bearer" header against tokens, as
// the API does, for scope need, and returns the matching token's name.
func Authenticate(r *http.Request, tokens func() []config.Token, need bearer.Scope) (name string, ok bool) {
	var ts []config.Token
	if tokens != nil {
		ts = tokens()
	}
	t, outcome, _ := bearer.Check(r.Header.Get("Authorization"), ts, need)
	return t.Name, outcome == bearer.OK
}

func (h *handler) refuse(w http.ResponseWriter, r *http.Request, why string) {
	// Never the token itself, not even a prefix: this is a failed attempt.
	// Anyone can cause these lines: they are rate-limited and truncated.
	h.refused.Warn(r.Context(), "api: unauthorized request",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.String("remote", r.RemoteAddr), slog.String("why", why))
	w.Header().Set("WWW-Authenticate", `Bearer realm="grayzone"`)
	writeError(w, http.StatusUnauthorized, why)
}

// ---- handlers

func (h *handler) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	if !h.query(w, r) {
		return
	}
	st, err := h.b.Status(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if st.Resources == nil {
		st.Resources = []ResourceStatus{}
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *handler) alarms(w http.ResponseWriter, r *http.Request) {
	if !h.query(w, r, "resource") {
		return
	}
	as, err := h.b.Alarms(r.Context(), r.URL.Query().Get("resource"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, orEmpty(as))
}

func (h *handler) listShifts(w http.ResponseWriter, r *http.Request) {
	if !h.query(w, r, "resource", "status") {
		return
	}
	q := r.URL.Query()
	f := shift.ListFilter{Resource: q.Get("resource")}
	if s := q.Get("status"); s != "" {
		st := shift.Status(strings.ToUpper(s))
		switch st {
		case shift.Active, shift.Expired, shift.Canceled:
		default:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("status: %q is not ACTIVE, EXPIRED or CANCELED", s))
			return
		}
		f.Status = st
	}
	ss, err := h.b.Shifts(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, orEmpty(ss))
}

func (h *handler) getShift(w http.ResponseWriter, r *http.Request) {
	if !h.query(w, r) {
		return
	}
	s, err := h.b.Shift(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (h *handler) startShift(w http.ResponseWriter, r *http.Request, actor string) {
	var in StartShiftRequest
	if !h.body(w, r, &in, maxSmallBody) {
		return
	}
	for _, f := range []struct{ name, v string }{{"resource", in.Resource}, {"away_from", in.AwayFrom}, {"expires_in", in.ExpiresIn}} {
		if f.v == "" {
			writeError(w, http.StatusBadRequest, f.name+": is required")
			return
		}
	}
	d, err := parseDuration("expires_in", in.ExpiresIn)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s, err := h.b.StartShift(r.Context(), shift.StartRequest{
		Resource: in.Resource, AwayFrom: in.AwayFrom, ExpiresIn: d, Comment: in.Comment,
		StartedBy: actor, Origin: shift.Manual,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/shifts/"+url.PathEscape(s.ID))
	writeJSON(w, http.StatusCreated, s)
}

func (h *handler) updateShift(w http.ResponseWriter, r *http.Request, actor string) {
	var in UpdateShiftRequest
	if !h.body(w, r, &in, maxSmallBody) {
		return
	}
	if in.ExpiresIn == nil && in.Comment == nil {
		writeError(w, http.StatusBadRequest, "body: nothing to update (give expires_in and/or comment)")
		return
	}
	req := shift.UpdateRequest{Comment: in.Comment, By: actor}
	if in.ExpiresIn != nil {
		d, err := parseDuration("expires_in", *in.ExpiresIn)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		req.ExpiresIn = &d
	}
	s, err := h.b.UpdateShift(r.Context(), r.PathValue("id"), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (h *handler) cancelShift(w http.ResponseWriter, r *http.Request, actor string) {
	if !h.query(w, r) {
		return
	}
	s, err := h.b.CancelShift(r.Context(), r.PathValue("id"), actor)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (h *handler) audit(w http.ResponseWriter, r *http.Request) {
	if !h.query(w, r, "resource", "after", "before", "limit") {
		return
	}
	q := r.URL.Query()
	aq := store.AuditQuery{Resource: q.Get("resource")}
	var err error
	if aq.After, err = queryInt(q, "after"); err == nil {
		if aq.Before, err = queryInt(q, "before"); err == nil {
			var limit int64
			limit, err = queryInt(q, "limit")
			aq.Limit = int(min(limit, store.MaxLimit)) // the store caps it too; this keeps int conversion safe
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	es, err := h.b.Audit(r.Context(), aq)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, orEmpty(es))
}

func (h *handler) practices(w http.ResponseWriter, r *http.Request) {
	if !h.query(w, r, "resource", "limit") {
		return
	}
	q := r.URL.Query()
	limit, err := queryInt(q, "limit")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ps, err := h.b.Practices(r.Context(), q.Get("resource"), int(min(limit, store.MaxLimit)))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, orEmpty(ps))
}

func (h *handler) decisions(w http.ResponseWriter, r *http.Request) {
	if !h.query(w, r) {
		return
	}
	ds, err := h.b.Decisions(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, orEmpty(ds))
}

func (h *handler) approve(w http.ResponseWriter, r *http.Request, actor string) {
	if !h.query(w, r) {
		return
	}
	d, err := h.b.Approve(r.Context(), r.PathValue("id"), actor)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (h *handler) ingest(w http.ResponseWriter, r *http.Request, _ string) {
	if !h.query(w, r) {
		return
	}
	buf := batchBodies.Get().(*bytes.Buffer)
	defer putBatchBody(buf)
	buf.Reset()
	if n := r.ContentLength; n > 0 && n <= MaxObservationBytes {
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxObservationBytes)); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than the limit of %d bytes", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("body: %v", err))
		return
	}
	resource, obs, aggs, err := batch.Decode(buf.Bytes(), h.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if _, ok := h.b.(AggregateIngester); ok || len(aggs) > 0 {
		// Through the one way in, under the batch's source (X-Grayzone-Source),
		// whether it carries aggregates or single observations only.
		h.ingestAggregates(w, r, resource, obs, aggs)
		return
	}
	if err := h.b.Ingest(r.Context(), resource, obs); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, Accepted{Accepted: len(obs)})
}

// ---- helpers

// batchBodies are request body buffers of the batch endpoint, reused: what
// is decoded from a body is copied out of it.
var batchBodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putBatchBody(b *bytes.Buffer) {
	if b.Cap() <= MaxObservationBytes+bytes.MinRead {
		batchBodies.Put(b)
	}
}

// query rejects query parameters other than allowed, so a misspelled filter
// (?resouce=web) is an error rather than a silently unfiltered answer.
func (h *handler) query(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	for k, vs := range r.URL.Query() {
		known := false
		for _, a := range allowed {
			known = known || k == a
		}
		switch {
		case !known:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("query: unknown parameter %q", k))
			return false
		case len(vs) > 1:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s: given %d times", k, len(vs)))
			return false
		}
	}
	return true
}

func queryInt(q url.Values, name string) (int64, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: %q is not a non-negative integer", name, s)
	}
	return n, nil
}

func parseDuration(field, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration (e.g. 30m, 2h)", field, s)
	}
	return d, nil
}

// body decodes the request body strictly into dst; on failure it has written
// the error (400, or 413 over limit) and returns false.
func (h *handler) body(w http.ResponseWriter, r *http.Request, dst any, limit int64) bool {
	err := strictjson.Decode(http.MaxBytesReader(w, r.Body, limit), dst)
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than the limit of %d bytes", tooBig.Limit))
		return false
	}
	writeError(w, http.StatusBadRequest, strictjson.Error("", err).Error())
	return false
}

// fail maps a Backend error to a status: the shift sentinels are the
// caller's problem (4xx); anything else is the server's (500, logged).
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, shift.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ingest.ErrCapped):
		code = http.StatusTooManyRequests // the reason names the cap
	case errors.Is(err, shift.ErrInvalid), errors.Is(err, ingest.ErrRejected):
		code = http.StatusBadRequest
	case errors.Is(err, ingest.ErrFull):
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, shift.ErrConflict), errors.Is(err, shift.ErrCapacity):
		code = http.StatusConflict
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		code = 499 // client went away; nobody reads this, but the log and metrics should not say 500
	case errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	if code >= 500 {
		h.log.LogAttrs(r.Context(), slog.LevelError, "api: request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	}
	writeError(w, code, err.Error())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	buf := responseBodies.Get().(*bytes.Buffer)
	defer putResponseBody(buf)
	buf.Reset()
	// json.Marshal's bytes and a newline; into a buffer reused across
	// responses, since a fleet's status is megabytes, and a buffer grown
	// afresh for each call was that much garbage again.
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		// Only a type bug gets here (e.g. a NaN in a float).
		writeError(w, http.StatusInternalServerError, "encoding response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// responseBodies are writeJSON's buffers.
var responseBodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledResponse keeps an unusually large response's buffer from being
// held: a status of some 10,000 resources.
const maxPooledResponse = 16 << 20

func putResponseBody(b *bytes.Buffer) {
	if b.Cap() <= maxPooledResponse {
		responseBodies.Put(b)
	}
}

// writeError writes {"error": msg} with msg folded onto one line (joined
// errors carry newlines).
func writeError(w http.ResponseWriter, code int, msg string) {
	msg = strings.NewReplacer("\r\n", "; ", "\n", "; ", "\r", "; ").Replace(msg)
	b, _ := json.Marshal(ErrorBody{Error: msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
