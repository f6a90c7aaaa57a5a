package dashboard

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/store"
)

// Bounds on what one event carries, so a long-lived service (months of
// shifts, a busy audit log) never makes an event, or the page, grow.
const (
	maxPoints    = 3600 // per resource: one hour at one a second, as the service keeps
	maxSpans     = 200  // per resource, the newest
	maxShifts    = 50   // active first, then the newest
	maxPractices = 20
	maxAudit     = 200 // per event; the page keeps a few hundred rows
	window       = time.Hour
	// clientBuffer is how many ticks a slow client may fall behind before
	// it is dropped; its browser reconnects and resumes from its cursor.
	clientBuffer  = 8
	writeTimeout  = 10 * time.Second
	backendBudget = 5 * time.Second // per poll, so a wedged backend cannot pile up polls
)

// message is one event's data. A snapshot (Reset) replaces the page's state;
// a tick carries what is new since the previous tick and is merged.
// Raw fields are absent when unchanged since the previous tick.
type message struct {
	Now       time.Time                   `json:"now"`
	Reset     bool                        `json:"reset,omitempty"`
	Status    *api.Status                 `json:"status,omitempty"`
	Resources map[string]*resourceMessage `json:"resources"`
	Shifts    json.RawMessage             `json:"shifts,omitempty"`
	Practices json.RawMessage             `json:"practices,omitempty"`
	// Audit holds entries newer than the cursor, newest first.
	Audit []store.AuditEntry `json:"audit"`
	Error string             `json:"error,omitempty"`
}

type resourceMessage struct {
	Points []api.HistoryPoint `json:"points"`
	// Spans are the spans in force or changed since the cursor (all of them
	// in a snapshot); the page merges them by kind, zone and start.
	Spans  []api.Span      `json:"spans"`
	Alarms json.RawMessage `json:"alarms,omitempty"`
	// Thresholds, in snapshots only: they do not change while serving.
	AvailabilityTarget *float64           `json:"availability_target,omitempty"`
	LatencyThresholds  map[string]float64 `json:"latency_thresholds_ms,omitempty"`
}

// cursor is where a stream stands: the last history point (Unix ms, the
// lowest over resources so none is skipped) and the last audit sequence. It
// is the SSE event id, so a reconnecting EventSource sends it back as
// Last-Event-ID and the stream resumes without a gap; the page drops the
// few duplicates a resume may repeat.
type cursor struct {
	t   int64
	seq int64
}

func (c cursor) String() string {
	return strconv.FormatInt(c.t, 10) + "." + strconv.FormatInt(c.seq, 10)
}

func parseCursor(s string) (cursor, bool) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), ".")
	if !ok {
		return cursor{}, false
	}
	t, err1 := strconv.ParseInt(a, 10, 64)
	seq, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || t < 0 || seq < 0 {
		return cursor{}, false
	}
	return cursor{t: t, seq: seq}, true
}

// hub polls the backend once per interval, whatever the number of clients,
// and fans the encoded tick out to them: a client costs one snapshot when it
// connects and a channel send per tick. It polls only while someone watches.
type hub struct {
	b    api.Backend
	opts Options

	mu      sync.Mutex
	clients map[*client]struct{}
	stop    context.CancelFunc // the poller's, nil when idle

	smu     sync.Mutex
	servers map[*http.Server]chan struct{} // closed when the server shuts down
}

type client struct{ ch chan []byte }

func newHub(b api.Backend, opts Options) *hub {
	return &hub{b: b, opts: opts, clients: map[*client]struct{}{}, servers: map[*http.Server]chan struct{}{}}
}

func (h *hub) subscribe() (*client, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) >= h.opts.MaxClients {
		return nil, false
	}
	c := &client{ch: make(chan []byte, clientBuffer)}
	h.clients[c] = struct{}{}
	if h.stop == nil {
		ctx, cancel := context.WithCancel(context.Background())
		h.stop = cancel
		go h.poll(ctx)
	}
	return c, true
}

func (h *hub) unsubscribe(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, c)
	h.idle()
}

// idle stops the poller when nobody watches; h.mu is held.
func (h *hub) idle() {
	if len(h.clients) == 0 && h.stop != nil {
		h.stop()
		h.stop = nil
	}
}

// broadcast hands frame to every client; one whose buffer is full is dropped
// rather than waited for, so a stalled browser cannot hold up the others or
// make the server buffer without bound.
func (h *hub) broadcast(ctx context.Context, frame []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ctx.Err() != nil {
		return // a stopped poller's last tick
	}
	for c := range h.clients {
		select {
		case c.ch <- frame:
		default:
			delete(h.clients, c)
			close(c.ch)
			h.opts.Log.Debug("dashboard: dropped a client that fell behind; it will resume from its cursor")
		}
	}
	h.idle()
}

// shutdown returns a channel closed when srv shuts down: http.Server.Shutdown
// waits for active connections, and an event stream never goes idle by itself.
func (h *hub) shutdown(srv *http.Server) <-chan struct{} {
	if srv == nil {
		return nil
	}
	h.smu.Lock()
	defer h.smu.Unlock()
	ch, ok := h.servers[srv]
	if !ok {
		ch = make(chan struct{})
		h.servers[srv] = ch
		srv.RegisterOnShutdown(func() {
			h.smu.Lock()
			delete(h.servers, srv)
			h.smu.Unlock()
			close(ch)
		})
	}
	return ch
}

// ServeHTTP streams server-sent events: a snapshot (or, with Last-Event-ID or
// ?since=CURSOR, what is new since then), then a tick every interval.
func (h *hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !h.opts.OpenReads && !authorized(r, h.opts.Tokens) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="grayzone"`)
		writeJSONError(w, http.StatusUnauthorized, "missing or refused bearer token (send Authorization: Bearer <token>)")
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "since" {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("query: unknown parameter %q", k))
			return
		}
	}
	from := r.Header.Get("Last-Event-ID")
	if s := q.Get("since"); s != "" {
		from = s
	}
	c, ok := h.subscribe()
	if !ok {
		w.Header().Set("Retry-After", "5")
		writeJSONError(w, http.StatusServiceUnavailable, "too many dashboard clients; retry later")
		return
	}
	defer h.unsubscribe(c)
	// Subscribed before the snapshot is taken: nothing between the two is lost.
	snap := h.snapshot(r.Context(), from)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("X-Accel-Buffering", "no") // a proxy in front must not buffer the stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	write := func(frame []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(frame); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// retry: how soon the browser reconnects after the stream drops.
	if !write(append([]byte("retry: 2000\n"), snap...)) {
		return
	}
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	down := h.shutdown(srv)
	for {
		select {
		case <-r.Context().Done():
			return
		case <-down:
			return
		case frame, ok := <-c.ch:
			if !ok || !write(frame) {
				return
			}
		}
	}
}

// snapshot encodes the state for a client starting from the cursor text
// (empty or invalid: everything kept).
func (h *hub) snapshot(ctx context.Context, from string) []byte {
	ctx, cancel := context.WithTimeout(ctx, backendBudget)
	defer cancel()
	cur, resume := parseCursor(from)
	msg := message{Reset: !resume, Resources: map[string]*resourceMessage{}, Audit: []store.AuditEntry{}}
	st, err := h.b.Status(ctx)
	if err != nil {
		msg.Error = "status: " + err.Error()
		msg.Now = time.Now().UTC()
		return frame("snapshot", cur, msg)
	}
	msg.Now, msg.Status = st.Now, &st
	var since time.Time
	if resume {
		since = time.UnixMilli(cur.t + 1)
	}
	next := cursor{t: -1, seq: cur.seq}
	var errs []string
	for _, rs := range st.Resources {
		hist, err := h.b.History(ctx, rs.Name, since)
		if err != nil {
			errs = append(errs, fmt.Sprintf("history of %s: %v", rs.Name, err))
			continue
		}
		rm := &resourceMessage{Points: tail(hist.Points, maxPoints), Spans: recentSpans(hist.Spans, st.Now),
			LatencyThresholds: hist.LatencyThresholds}
		target := hist.AvailabilityTarget
		rm.AvailabilityTarget = &target
		if al, err := h.b.Alarms(ctx, rs.Name); err == nil {
			rm.Alarms = marshal(orEmpty(al))
		} else {
			errs = append(errs, fmt.Sprintf("alarms of %s: %v", rs.Name, err))
		}
		if n := len(rm.Points); n > 0 && (next.t < 0 || rm.Points[n-1].T < next.t) {
			next.t = rm.Points[n-1].T
		}
		msg.Resources[rs.Name] = rm
	}
	if next.t < 0 {
		next.t = cur.t
	}
	if ss, err := h.b.Shifts(ctx, shift.ListFilter{}); err == nil {
		msg.Shifts = marshal(recentShifts(ss))
	} else {
		errs = append(errs, "shifts: "+err.Error())
	}
	if ps, err := h.b.Practices(ctx, "", maxPractices); err == nil {
		msg.Practices = marshal(orEmpty(ps))
	} else {
		errs = append(errs, "practice runs: "+err.Error())
	}
	q := store.AuditQuery{Limit: maxAudit}
	if resume {
		q.After = cur.seq
	}
	if es, err := h.b.Audit(ctx, q); err == nil {
		msg.Audit = orEmpty(es)
		if len(es) > 0 {
			next.seq = max(next.seq, es[0].Seq)
		}
	} else {
		errs = append(errs, "audit: "+err.Error())
	}
	msg.Error = strings.Join(errs, "; ")
	return frame("snapshot", next, msg)
}

// pollState is what the poller remembers between ticks.
type pollState struct {
	lastT   map[string]int64
	lastSeq int64
	prev    map[string][]byte // last sent alarms (by resource), shifts, practices
}

func (h *hub) poll(ctx context.Context) {
	ps := &pollState{lastT: map[string]int64{}, prev: map[string][]byte{}}
	// Start after the newest point: what came before is in each client's
	// snapshot, which is taken after this.
	if st, err := h.b.Status(ctx); err == nil {
		for _, rs := range st.Resources {
			ps.lastT[rs.Name] = 0
			if hist, err := h.b.History(ctx, rs.Name, st.Now.Add(-time.Minute)); err == nil && len(hist.Points) > 0 {
				ps.lastT[rs.Name] = hist.Points[len(hist.Points)-1].T
			}
		}
	}
	if es, err := h.b.Audit(ctx, store.AuditQuery{Limit: 1}); err == nil && len(es) > 0 {
		ps.lastSeq = es[0].Seq
	}
	t := time.NewTicker(h.opts.Interval)
	defer t.Stop()
	lastProblem := "" // logged once, not every second
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f, problem := h.tick(ctx, ps)
			if problem != "" && problem != lastProblem && ctx.Err() == nil {
				h.opts.Log.Warn("dashboard: reading the backend failed", "err", problem)
			}
			lastProblem = problem
			h.broadcast(ctx, f)
		}
	}
}

// tick gathers what changed since the previous tick, and what failed.
func (h *hub) tick(parent context.Context, ps *pollState) ([]byte, string) {
	ctx, cancel := context.WithTimeout(parent, backendBudget)
	defer cancel()
	msg := message{Resources: map[string]*resourceMessage{}, Audit: []store.AuditEntry{}}
	st, err := h.b.Status(ctx)
	if err != nil {
		msg.Now, msg.Error = time.Now().UTC(), "status: "+err.Error()
		return frame("tick", ps.cursor(), msg), msg.Error
	}
	msg.Now, msg.Status = st.Now, &st
	var errs []string
	for _, rs := range st.Resources {
		last, ok := ps.lastT[rs.Name]
		if !ok || last == 0 {
			last = st.Now.Add(-window).UnixMilli()
		}
		hist, err := h.b.History(ctx, rs.Name, time.UnixMilli(last+1))
		if err != nil {
			errs = append(errs, fmt.Sprintf("history of %s: %v", rs.Name, err))
			continue
		}
		rm := &resourceMessage{Spans: recentSpans(hist.Spans, st.Now), Points: []api.HistoryPoint{}}
		for _, p := range hist.Points {
			if p.T > last {
				rm.Points = append(rm.Points, p)
			}
		}
		rm.Points = tail(rm.Points, maxPoints)
		if n := len(rm.Points); n > 0 {
			ps.lastT[rs.Name] = rm.Points[n-1].T
		}
		if al, err := h.b.Alarms(ctx, rs.Name); err == nil {
			rm.Alarms = ps.changed("alarms/"+rs.Name, marshal(orEmpty(al)))
		} else {
			errs = append(errs, fmt.Sprintf("alarms of %s: %v", rs.Name, err))
		}
		msg.Resources[rs.Name] = rm
	}
	if ss, err := h.b.Shifts(ctx, shift.ListFilter{}); err == nil {
		msg.Shifts = ps.changed("shifts", marshal(recentShifts(ss)))
	} else {
		errs = append(errs, "shifts: "+err.Error())
	}
	if pr, err := h.b.Practices(ctx, "", maxPractices); err == nil {
		msg.Practices = ps.changed("practices", marshal(orEmpty(pr)))
	} else {
		errs = append(errs, "practice runs: "+err.Error())
	}
	if es, err := h.b.Audit(ctx, store.AuditQuery{After: ps.lastSeq, Limit: maxAudit}); err == nil {
		msg.Audit = orEmpty(es)
		if len(es) > 0 {
			ps.lastSeq = max(ps.lastSeq, es[0].Seq)
		}
	} else {
		errs = append(errs, "audit: "+err.Error())
	}
	msg.Error = strings.Join(errs, "; ")
	return frame("tick", ps.cursor(), msg), msg.Error
}

// changed returns b when it differs from what was last sent under key.
func (ps *pollState) changed(key string, b []byte) json.RawMessage {
	if bytes.Equal(ps.prev[key], b) {
		return nil
	}
	ps.prev[key] = b
	return b
}

func (ps *pollState) cursor() cursor {
	c := cursor{t: -1, seq: ps.lastSeq}
	for _, t := range ps.lastT {
		if c.t < 0 || t < c.t {
			c.t = t
		}
	}
	c.t = max(c.t, 0)
	return c
}

// frame encodes one SSE event. JSON has no raw newlines, so data is one line.
func frame(event string, c cursor, msg message) []byte {
	data, err := json.Marshal(msg)
	if err != nil {
		// Only a value JSON cannot carry (NaN) gets here; say so rather than go quiet.
		data, _ = json.Marshal(message{Now: msg.Now, Resources: map[string]*resourceMessage{}, Audit: []store.AuditEntry{},
			Error: "encoding the event: " + err.Error()})
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "event: %s\nid: %s\ndata: ", event, c)
	b.Write(data)
	b.WriteString("\n\n")
	return b.Bytes()
}

func marshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

func tail[T any](s []T, n int) []T {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// recentSpans keeps the spans that overlap the last hour, at most maxSpans.
func recentSpans(spans []api.Span, now time.Time) []api.Span {
	from := now.Add(-window).UnixMilli()
	out := []api.Span{}
	for _, s := range spans {
		if s.To == nil || *s.To >= from {
			out = append(out, s)
		}
	}
	return tail(out, maxSpans)
}

// recentShifts orders shifts active first, then newest first, and keeps maxShifts.
func recentShifts(ss []shift.Shift) []shift.Shift {
	out := slices.Clone(orEmpty(ss))
	slices.SortStableFunc(out, func(a, b shift.Shift) int {
		if (a.Status == shift.Active) != (b.Status == shift.Active) {
			if a.Status == shift.Active {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.StartedAt.UnixNano(), a.StartedAt.UnixNano())
	})
	return out[:min(len(out), maxShifts)]
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(api.ErrorBody{Error: msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
