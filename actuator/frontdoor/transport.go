package frontdoor

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// h1Transport is the round tripper to one target: HTTP/1.1 over a pool of
// keep-alive connections, each request written and its response read on
// the calling goroutine. http.Transport hands every request to two
// goroutines of its own per connection (a writer and a reader) through
// channels; in a proxy that hand-off, with its context plumbing, costs more
// CPU than the proxying itself. Requests it does not take on (protocol
// upgrades, bodies of unknown or large size, trailers, other schemes) go to
// the fallback, a plain http.Transport.
type h1Transport struct {
	addr     string
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	fallback http.RoundTripper
	maxIdle  int
	idleTime time.Duration
	// responseTimeout bounds the wait for the response head (Limits.ResponseTimeout).
	responseTimeout time.Duration

	mu     sync.Mutex
	idle   []*h1Conn // LIFO: the warmest connection first
	closed bool
}

// maxFastBody is the largest request body the fast path writes before
// reading the response; larger ones (and unknown lengths) go to the
// fallback, which writes and reads concurrently.
const maxFastBody = 64 << 10

type h1Conn struct {
	net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Duration // monoNow when it was last put back (or taken, on the fast path)
	// headBy is the monoNow at which the read deadline for a response head
	// was set; 0 when none is set (the body lifted it).
	headBy time.Duration
}

var errTransportClosed = errors.New("frontdoor: transport closed")

// awaitHead bounds the wait for the response head, once the request is sent
// at now (monoNow): to at least d and at most d plus d/8. Setting a read
// deadline is a runtime timer update and a wall-clock read; rather than
// set and lift one per request, a kept-alive connection keeps its deadline
// across requests while their bodies arrive with their heads, and it is
// pushed back only once it is d/8 old. Only a body still on its way when
// its head is in lifts it (bodyAhead), as the body is not bounded.
func (c *h1Conn) awaitHead(now, d time.Duration) {
	if c.headBy != 0 && now-c.headBy <= d/8 {
		return // the deadline in force is at least d away
	}
	c.SetReadDeadline(time.Now().Add(d + d/8))
	c.headBy = max(now, 1)
}

// liftHeadDeadline lifts the response-head bound: the body may take as long
// as it takes.
func (c *h1Conn) liftHeadDeadline() {
	if c.headBy != 0 {
		c.SetReadDeadline(time.Time{})
		c.headBy = 0
	}
}

// headIn lifts the response-head bound on the net/http path, whose body is
// read later by the ReverseProxy. A caller gone meanwhile keeps the
// connection interrupted.
func (c *h1Conn) headIn(ctx context.Context) {
	c.liftHeadDeadline()
	if ctx.Err() != nil {
		c.SetDeadline(aLongTimeAgo)
	}
}

// isTimeout reports whether err is a deadline that passed (a backend too
// slow to answer, or to accept a connection).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// gatewayStatus is the answer for a request the backend did not answer:
// 504 when it was too slow, 502 otherwise.
func gatewayStatus(err error) int {
	if isTimeout(err) {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// get takes the warmest idle connection, or dials one; now is monoNow.
func (t *h1Transport) get(ctx context.Context, now time.Duration) (c *h1Conn, reused bool, err error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, false, errTransportClosed
	}
	for n := len(t.idle); n > 0; n = len(t.idle) {
		c = t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		if now-c.lastUsed < t.idleTime {
			t.mu.Unlock()
			return c, true, nil
		}
		c.Close()
	}
	t.mu.Unlock()
	nc, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, false, err
	}
	// 16 KiB: the largest response head the fast path relays (a larger one is a 502).
	return &h1Conn{Conn: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 4<<10)}, false, nil
}

// put gives a connection back to the pool; now is monoNow, or a reading
// from earlier in the request (an older lastUsed only retires it sooner).
func (t *h1Transport) put(c *h1Conn, now time.Duration) {
	c.lastUsed = now
	t.mu.Lock()
	if !t.closed && len(t.idle) < t.maxIdle {
		t.idle = append(t.idle, c)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	c.Close()
}

// CloseIdleConnections closes every idle connection; with closing set, the
// transport takes no more requests.
func (t *h1Transport) closeIdle(closing bool) {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	if closing {
		t.closed = true
	}
	t.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

// fastPath reports whether the request can be sent by h1Transport.
func fastPath(req *http.Request) bool {
	if req.URL.Scheme != "http" || req.Trailer != nil || req.ContentLength > maxFastBody {
		return false
	}
	if req.ContentLength < 0 || (req.ContentLength == 0 && req.Body != nil && req.Body != http.NoBody) {
		return false // length unknown: chunked
	}
	_, upgrade := req.Header["Upgrade"]
	return !upgrade
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !fastPath(req) {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		c, reused, err := t.get(ctx, monoNow())
		if err != nil {
			return nil, err
		}
		resp, err, retry := t.roundTrip(ctx, c, req)
		if err == nil {
			return resp, nil
		}
		c.Close()
		// A kept-alive connection the backend closed while it was idle
		// fails before any byte of a response: send again, once, on a
		// fresh one, if that is safe.
		if retry && reused && attempt == 0 && req.Body == nil && idempotent(req.Method) && ctx.Err() == nil {
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
}

// roundTrip sends req on c and reads the response head. retry reports that
// the failure came before any byte of a response was read.
func (t *h1Transport) roundTrip(ctx context.Context, c *h1Conn, req *http.Request) (_ *http.Response, _ error, retry bool) {
	// A caller that goes away interrupts the exchange; the connection is then
	// not reused.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	if err := writeRequest(c.bw, req); err != nil {
		stop()
		return nil, err, true
	}
	c.awaitHead(monoNow(), t.responseTimeout)
	if _, err := c.br.Peek(1); err != nil {
		stop()
		return nil, err, !isTimeout(err)
	}
	var resp *http.Response
	for {
		var err error
		resp, err = http.ReadResponse(c.br, req)
		if err != nil {
			stop()
			return nil, err, false
		}
		// 1xx answers other than 101 precede the real one.
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		break
	}
	c.headIn(ctx)
	resp.Body = &h1Body{rc: resp.Body, t: t, c: c, stop: stop, eof: resp.Body == http.NoBody,
		reuse: !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols}
	return resp, nil, false
}

var aLongTimeAgo = time.Unix(1, 0)

// h1Body returns the connection to the pool once the body was read to its
// end and closed; a body closed early closes the connection.
type h1Body struct {
	rc     io.ReadCloser
	t      *h1Transport
	c      *h1Conn
	stop   func() bool
	reuse  bool
	eof    bool
	closed bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("frontdoor: read on closed body")
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *h1Body) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.rc.Close()
	// stop reports false when the caller's context already fired and
	// poisoned the connection's deadline.
	if b.stop() && b.eof && b.reuse {
		b.t.put(b.c, monoNow())
	} else {
		b.c.Close()
	}
	return nil
}

// writeRequest writes req as HTTP/1.1 and flushes. The proxy's Rewrite made
// the request; incoming header values were validated by the server.
func writeRequest(w *bufio.Writer, req *http.Request) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	w.WriteString(req.Method)
	w.WriteByte(' ')
	if req.URL.Opaque != "" {
		w.WriteString(req.URL.Opaque)
	} else {
		p := req.URL.EscapedPath()
		if p == "" {
			p = "/"
		}
		w.WriteString(p)
	}
	if req.URL.ForceQuery || req.URL.RawQuery != "" {
		w.WriteByte('?')
		w.WriteString(req.URL.RawQuery)
	}
	w.WriteString(" HTTP/1.1\r\nHost: ")
	writeValue(w, host)
	w.WriteString("\r\n")
	for k, vv := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Trailer":
			continue
		case "User-Agent":
			// The proxy sets an empty User-Agent so that none is sent.
			if len(vv) == 0 || vv[0] == "" {
				continue
			}
		}
		for _, v := range vv {
			w.WriteString(k)
			w.WriteString(": ")
			writeValue(w, v)
			w.WriteString("\r\n")
		}
	}
	switch {
	case req.ContentLength > 0:
		w.WriteString("Content-Length: ")
		w.Write(strconv.AppendInt(w.AvailableBuffer(), req.ContentLength, 10))
		w.WriteString("\r\n")
	case req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch:
		w.WriteString("Content-Length: 0\r\n")
	}
	if req.Close {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
	if req.ContentLength > 0 {
		_, err := io.CopyN(w, req.Body, req.ContentLength)
		req.Body.Close()
		if err != nil {
			return err
		}
	} else if req.Body != nil {
		req.Body.Close()
	}
	return w.Flush()
}

// writeValue writes a header value with any CR or LF made a space, as
// net/http does, so that no value can start a header of its own.
func writeValue(w *bufio.Writer, v string) {
	if !strings.ContainsAny(v, "\r\n") {
		w.WriteString(v)
		return
	}
	w.WriteString(strings.NewReplacer("\r", " ", "\n", " ").Replace(v))
}
