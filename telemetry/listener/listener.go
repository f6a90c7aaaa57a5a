// Package listener is the one way a telemetry receiver (OTLP over HTTP and
// gRPC, EMF over HTTP) listens: a bearer token with the ingest scope on
// every request (as the OpenTelemetry Collector's bearertokenauth), TLS when
// a certificate is configured (as its configtls), and bounds that hold by
// construction: header, body and idle timeouts, a cap on connections, a cap
// on bodies in flight (a full cap is HTTP 429 / gRPC ResourceExhausted with
// the reason), and a limit on a body's size after decompression.
//
// Refusals are logged through a loglimit.Limiter: anyone who reaches the
// port can cause them.
package listener

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/grayzone/grayzone/internal/bearer"
	"github.com/grayzone/grayzone/internal/loglimit"
)

// Limits bound what one listener's clients can hold. Zero fields take the
// defaults.
type Limits struct {
	MaxBodyBytes   int64         // one request's body after decompression
	MaxConnections int           // connections open at once; more wait to be accepted
	MaxInFlight    int           // request bodies being read or converted at once; more get 429
	HeaderTimeout  time.Duration // to read a request's header (gRPC: the connection's handshake)
	BodyTimeout    time.Duration // to read a request's body, after its header
	IdleTimeout    time.Duration // an idle keep-alive connection is closed after this
}

// Defaults of Limits.
const (
	DefaultMaxConnections = 256
	DefaultMaxInFlight    = 16
	DefaultHeaderTimeout  = 10 * time.Second
	DefaultBodyTimeout    = 30 * time.Second
	DefaultIdleTimeout    = 2 * time.Minute
)

// WithDefaults fills the zero fields; maxBody is the receiver's own default.
func (l Limits) WithDefaults(maxBody int64) Limits {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = maxBody
	}
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = DefaultMaxInFlight
	}
	if l.HeaderTimeout <= 0 {
		l.HeaderTimeout = DefaultHeaderTimeout
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	return l
}

// Security says who may send. Either Tokens is set (a bearer token with the
// ingest scope is required), or Insecure is true (anyone who reaches the
// port may send: for trusted networks only). A zero Security is refused, so
// no receiver is open by omission.
type Security struct {
	// Tokens returns the tokens in force; called on every request, so a
	// rotated tokens file takes effect at once.
	Tokens   func() []bearer.Token
	Insecure bool
	// TLS, when set, is served (certificates, e.g. a reloading GetCertificate).
	TLS *tls.Config
}

// Guard applies a source's security and limits to its listeners.
type Guard struct {
	name     string
	sec      Security
	lim      Limits
	refused  *loglimit.Limiter
	inFlight chan struct{}
}

// New checks sec and returns the guard of the source name.
func New(name string, sec Security, lim Limits, maxBody int64, log *slog.Logger) (*Guard, error) {
	if sec.Tokens == nil && !sec.Insecure {
		return nil, fmt.Errorf("%s: no credentials: give it the tokens (a token with the ingest scope) or set insecure", name)
	}
	lim = lim.WithDefaults(maxBody)
	return &Guard{name: name, sec: sec, lim: lim, refused: loglimit.New(log), inFlight: make(chan struct{}, lim.MaxInFlight)}, nil
}

// Limits are the guard's limits, defaults filled.
func (g *Guard) Limits() Limits { return g.lim }

// Refused is the rate-limited log for what outsiders cause.
func (g *Guard) Refused() *loglimit.Limiter { return g.refused }

// Listen binds addr with the connection cap.
func (g *Guard) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return Cap(ln, g.lim.MaxConnections), nil
}

// ServeHTTP serves h on ln (bound by Listen) until it fails or is closed:
// HTTPS when the security has TLS, with the timeouts, every request through
// Wrap. Close the returned server to stop it.
func (g *Guard) ServeHTTP(ln net.Listener, h http.Handler) (*http.Server, func() error) {
	srv := &http.Server{
		Handler:           g.Wrap(h),
		ReadHeaderTimeout: g.lim.HeaderTimeout,
		// The whole request, header and body; Wrap checks the in-flight cap
		// before a body is read, so a slow body holds at most a slot.
		ReadTimeout:    g.lim.HeaderTimeout + g.lim.BodyTimeout,
		WriteTimeout:   g.lim.HeaderTimeout + g.lim.BodyTimeout + 10*time.Second,
		IdleTimeout:    g.lim.IdleTimeout,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug), // handshake noise: outsiders cause it
	}
	if g.sec.TLS != nil {
		srv.TLSConfig = g.sec.TLS.Clone()
		if srv.TLSConfig.MinVersion == 0 {
			srv.TLSConfig.MinVersion = tls.VersionTLS12
		}
		return srv, func() error { return srv.ServeTLS(ln, "", "") }
	}
	return srv, func() error { return srv.Serve(ln) }
}

// Wrap checks the token (401 without one, 403 without the ingest scope),
// takes an in-flight slot (429 when none is free), and gives next a body
// that is decompressed (gzip) and ends in ErrTooLarge past MaxBodyBytes.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code, why := g.authorize(r.Context(), r.Header.Get("Authorization"), r.RemoteAddr); code != 0 {
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="grayzone"`)
			}
			http.Error(w, why, code)
			return
		}
		release, ok := g.acquire()
		if !ok {
			why := fmt.Sprintf("%s: %d request bodies already in flight (limits.max_in_flight); retry later", g.name, g.lim.MaxInFlight)
			g.refused.Warn(r.Context(), "telemetry: over the in-flight cap", slog.String("listener", g.name), slog.String("remote", r.RemoteAddr))
			w.Header().Set("Retry-After", "1")
			http.Error(w, why, http.StatusTooManyRequests)
			return
		}
		defer release()
		body, err := g.body(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
			return
		}
		r.Body = body
		r.Header.Del("Content-Encoding")
		next.ServeHTTP(w, r)
	})
}

// ErrTooLarge ends a body past MaxBodyBytes (after decompression).
var ErrTooLarge = errors.New("body too large")

// BodyStatus maps a body read error to an HTTP status and message.
func (g *Guard) BodyStatus(err error) (int, string) {
	var mbe *http.MaxBytesError
	if errors.Is(err, ErrTooLarge) || errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("%s: body over %d bytes (after decompression; limits.max_body_bytes)", g.name, g.lim.MaxBodyBytes)
	}
	return http.StatusBadRequest, fmt.Sprintf("%s: body unreadable: %s", g.name, loglimit.Truncate(err.Error(), 200))
}

func (g *Guard) body(w http.ResponseWriter, r *http.Request) (io.ReadCloser, error) {
	raw := http.MaxBytesReader(w, r.Body, g.lim.MaxBodyBytes)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return raw, nil
	case "gzip":
		return &gzipBody{raw: raw, max: g.lim.MaxBodyBytes}, nil
	default:
		return nil, fmt.Errorf("%s: Content-Encoding %q is not supported (gzip or none)", g.name, loglimit.Truncate(enc, 32))
	}
}

// gzipBody decompresses lazily (a bad header is a read error) and stops at
// max bytes of output, however small the input: a gzip bomb reads as
// ErrTooLarge, never as memory.
type gzipBody struct {
	raw  io.ReadCloser
	zr   *gzip.Reader
	max  int64
	read int64
}

func (b *gzipBody) Read(p []byte) (int, error) {
	if b.zr == nil {
		zr, err := gzip.NewReader(b.raw)
		if errors.Is(err, io.EOF) {
			// No gzip header at all: a malformed body, not an empty one
			// (a reader taking EOF as the end would accept it as nothing).
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return 0, fmt.Errorf("gzip: %w", err)
		}
		b.zr = zr
	}
	if b.read >= b.max {
		// One byte more tells a body of exactly max from a longer one.
		var one [1]byte
		if n, _ := b.zr.Read(one[:]); n > 0 {
			return 0, ErrTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.max-b.read {
		p = p[:b.max-b.read]
	}
	n, err := b.zr.Read(p)
	b.read += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("gzip: %w", err)
	}
	return n, err
}

func (b *gzipBody) Close() error { return b.raw.Close() }

// authorize returns 0 when the credential is good, else the HTTP status
// (401 or 403) and why; it logs refusals, rate-limited.
func (g *Guard) authorize(ctx context.Context, auth, remote string) (int, string) {
	if g.sec.Insecure {
		return 0, ""
	}
	t, outcome, why := bearer.Check(auth, g.sec.Tokens(), bearer.Ingest)
	switch outcome {
	case bearer.OK:
		return 0, ""
	case bearer.Forbidden:
		g.refused.Warn(ctx, "telemetry: token lacks the ingest scope", slog.String("listener", g.name), slog.String("remote", remote), slog.String("token", t.Name))
		return http.StatusForbidden, why
	}
	g.refused.Warn(ctx, "telemetry: unauthenticated request", slog.String("listener", g.name), slog.String("remote", remote), slog.String("why", why))
	return http.StatusUnauthorized, why
}

func (g *Guard) acquire() (release func(), ok bool) {
	select {
	case g.inFlight <- struct{}{}:
		return func() { <-g.inFlight }, true
	default:
		return nil, false
	}
}

// GRPCOptions are the gRPC server's options: TLS, the message size limit
// (grpc-go applies it after decompression too), the handshake and idle
// timeouts, streams per connection, a tap that checks the token when a
// stream opens — before its message is read (Unauthenticated,
// PermissionDenied) — and an interceptor for the in-flight cap
// (ResourceExhausted).
func (g *Guard) GRPCOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(g.lim.MaxBodyBytes)),
		grpc.ConnectionTimeout(g.lim.HeaderTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: g.lim.IdleTimeout}),
		grpc.MaxConcurrentStreams(uint32(g.lim.MaxInFlight)),
		grpc.InTapHandle(g.tap),
		grpc.UnaryInterceptor(g.unary),
	}
	if g.sec.TLS != nil {
		c := g.sec.TLS.Clone()
		if c.MinVersion == 0 {
			c.MinVersion = tls.VersionTLS12
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(c)))
	}
	return opts
}

// tap runs as a stream opens, with its headers only: a caller without a
// valid token never gets a message read.
func (g *Guard) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	var auth, remote string
	if v := info.Header.Get("authorization"); len(v) > 0 {
		auth = v[0]
	}
	if p, ok := peerAddr(ctx); ok {
		remote = p
	}
	switch code, why := g.authorize(ctx, auth, remote); code {
	case http.StatusUnauthorized:
		return ctx, status.Error(codes.Unauthenticated, why)
	case http.StatusForbidden:
		return ctx, status.Error(codes.PermissionDenied, why)
	}
	return ctx, nil
}

func (g *Guard) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	var remote string
	if p, ok := peerAddr(ctx); ok {
		remote = p
	}
	release, ok := g.acquire()
	if !ok {
		g.refused.Warn(ctx, "telemetry: over the in-flight cap", slog.String("listener", g.name), slog.String("remote", remote))
		return nil, status.Errorf(codes.ResourceExhausted, "%s: %d requests already in flight (limits.max_in_flight); retry later", g.name, g.lim.MaxInFlight)
	}
	defer release()
	return handler(ctx, req)
}

// Cap holds Accept while max connections are open: a flood of connections
// waits in the kernel's backlog instead of costing memory. The telemetry
// listeners and serve's API use it.
func Cap(ln net.Listener, max int) net.Listener {
	return &capped{Listener: ln, sem: make(chan struct{}, max), done: make(chan struct{})}
}

type capped struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *capped) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &cappedConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *capped) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type cappedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func peerAddr(ctx context.Context) (string, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return "", false
	}
	return p.Addr.String(), true
}
