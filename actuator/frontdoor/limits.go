package frontdoor

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound what a client may send the front door and how slowly. A
// request outside them is the client's error: it is answered (400, 408 or
// 431) and never counted against a target, a zone or an operation.
type Limits struct {
	// MaxHeaderBytes bounds a request's head (request line and header
	// fields); a larger one is answered 431. Default 64 KiB, at least 8 KiB.
	MaxHeaderBytes int
	// HeaderTimeout bounds the time from a request head's first byte to its
	// end (default 5 s).
	HeaderTimeout time.Duration
	// BodyTimeout bounds the time to receive a request's body once its head
	// is in (default 60 s); a client that is slower is answered 408.
	BodyTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// client connection (default 2 min).
	IdleTimeout time.Duration
	// MaxConnections caps the client connections the front door holds at
	// once, over all its endpoints (default 10 000). One past the cap is
	// answered 503 and closed at once: held open, it would only wait.
	MaxConnections int
	// ResponseTimeout bounds the wait for a backend's response head once
	// the request was sent (default 60 s; the bound is between it and an
	// eighth more, see h1Conn.awaitHead); a backend that is slower is
	// answered 504 and counted as the target's fault. The body that follows
	// is not bounded: a stream may take as long as it takes.
	ResponseTimeout time.Duration
}

// Defaults of Limits.
const (
	DefaultMaxHeaderBytes  = 64 << 10
	MinMaxHeaderBytes      = 8 << 10
	DefaultHeaderTimeout   = 5 * time.Second
	DefaultBodyTimeout     = 60 * time.Second
	DefaultIdleTimeout     = 2 * time.Minute
	DefaultMaxConnections  = 10000
	DefaultResponseTimeout = 60 * time.Second
)

func (l Limits) withDefaults() Limits {
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	l.MaxHeaderBytes = max(l.MaxHeaderBytes, MinMaxHeaderBytes)
	if l.HeaderTimeout <= 0 {
		l.HeaderTimeout = DefaultHeaderTimeout
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.ResponseTimeout <= 0 {
		l.ResponseTimeout = DefaultResponseTimeout
	}
	return l
}

// netHTTPHeaderBytes is http.Server.MaxHeaderBytes for a head limit:
// net/http reads up to 4 KiB beyond MaxHeaderBytes before it refuses.
func (l Limits) netHTTPHeaderBytes() int { return l.MaxHeaderBytes - 4096 }

// deadlineRefresh is how stale the fast path's idle deadline may get
// before it is pushed back: a small fraction of the idle timeout, so that
// a busy connection is never cut as idle.
func (l Limits) deadlineRefresh() time.Duration { return min(10*time.Second, l.IdleTimeout/8) }

// errClientBody wraps a failure to read a request's body from the client:
// it was shorter than its Content-Length, badly chunked, too slow, or the
// client went away.
var errClientBody = errors.New("frontdoor: reading the request body")

// clientStatus is the answer to a request whose body failed: 408 when the
// client was too slow, else 400.
type clientStatus struct {
	code int
	text string
}

var (
	statusBadRequest = clientStatus{http.StatusBadRequest, "bad request: the request body is incomplete or malformed"}
	statusTimeout    = clientStatus{http.StatusRequestTimeout, "request timeout: the request body was not received in time"}
)

func clientStatusOf(err error) clientStatus {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return statusTimeout
	}
	return statusBadRequest
}

// clientBody is a request body on the net/http path, read from the client.
// It keeps the first read error other than EOF and the time spent in
// Read, which is the client's time, not the backend's.
type clientBody struct {
	rc io.ReadCloser

	mu   sync.Mutex // Read may run on the transport's goroutine
	err  error
	wait time.Duration
}

type clientBodyKey struct{}

// clientBodyOf returns the request's client body, if forward wrapped one.
func clientBodyOf(r *http.Request) *clientBody {
	cb, _ := r.Context().Value(clientBodyKey{}).(*clientBody)
	return cb
}

func (b *clientBody) Read(p []byte) (int, error) {
	start := monoNow()
	n, err := b.rc.Read(p)
	d := monoNow() - start
	b.mu.Lock()
	b.wait += d
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
	return n, err
}

func (b *clientBody) Close() error { return b.rc.Close() }

func (b *clientBody) failed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err != nil
}

func (b *clientBody) status() clientStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return clientStatusOf(b.err)
}

func (b *clientBody) waited() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wait
}

// connLimit caps the client connections of every endpoint of a proxy.
type connLimit struct {
	max  int64
	open atomic.Int64
	log  *slog.Logger
	last atomic.Int64 // unix seconds of the last "at the cap" log line
}

// tooMany is what a connection past the cap is told before it is closed.
var tooMany = func() string {
	body := "too many connections: the front door is at its cap (max_connections)\n"
	return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}()

// limitedListener counts the connections it accepts against the proxy's cap.
type limitedListener struct {
	net.Listener
	lim *connLimit
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.lim.open.Add(1) <= l.lim.max {
			return &countedConn{Conn: c, lim: l.lim}, nil
		}
		l.lim.open.Add(-1)
		// Answered and closed on a goroutine of its own: a client that does
		// not read must not stall the accept loop.
		go func() {
			c.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(c, tooMany)
			c.Close()
		}()
		if now := time.Now().Unix(); l.lim.last.Swap(now) != now { // at most one line a second
			l.lim.log.Warn("frontdoor: connection cap reached; refusing new connections with 503", "max_connections", l.lim.max)
		}
	}
}

// countedConn gives its place under the cap back once, when closed.
type countedConn struct {
	net.Conn
	lim  *connLimit
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.lim.open.Add(-1) })
	return c.Conn.Close()
}
