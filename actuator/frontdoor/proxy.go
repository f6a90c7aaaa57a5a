package frontdoor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/internal/warm"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// Proxy serves a Table over HTTP: one regional listener and one listener per zone.
type Proxy struct {
	table     *Table
	transport *http.Transport
	log       *slog.Logger
	rec       *record.Recorder
	recZonal  bool
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	limits    Limits

	mu        sync.RWMutex
	routes    map[Target]*route // keyed by the whole target: a re-registered id may move
	servers   []*http.Server
	endpoints []*fastEndpoint
	regional  string
	zonal     map[string]string
}

// route is what the proxy keeps per target: a pool of kept-alive
// connections, the reverse proxy of the net/http path, and the target's
// recorded series.
type route struct {
	target  Target
	pool    *h1Transport
	rp      *httputil.ReverseProxy // records (when there is a Recorder)
	rpQuiet *httputil.ReverseProxy // records nothing: zonal endpoints without RecordZonal
	ops     *opSeries              // nil without a Recorder
}

// ProxyOptions configure a Proxy; zero values are sensible defaults.
type ProxyOptions struct {
	// Listen is the host to bind endpoints on that have no address of their
	// own (default 127.0.0.1), each on a free port.
	Listen string
	// Regional and Zonal give endpoints fixed addresses (host:port).
	Regional string
	Zonal    map[string]string
	Log      *slog.Logger
	// Recorder, when set, counts every proxied request's outcome and latency
	// as the front door saw it: source observation.Server, the target's zone
	// and id, and the request path's first segment as the operation. Nil
	// records nothing.
	Recorder *record.Recorder
	// RecordZonal records the zonal endpoints' requests too. Off, only the
	// regional endpoint's are recorded: there the front door picks the zone,
	// while on a zonal endpoint the caller does, and a caller who can choose
	// which zone gets which requests can make one zone look worse than the
	// others (see docs/security.md). Turn it on only when the zonal
	// endpoints are reachable by trusted callers alone.
	RecordZonal bool
	// NetHTTPOnly serves every request through net/http's server and
	// httputil.ReverseProxy, without the fast path (see fastpath.go).
	NetHTTPOnly bool
	// Limits bound what a client may send and how slowly (see Limits);
	// zero fields take the defaults.
	Limits Limits
}

// StartProxy binds the regional endpoint and one zonal endpoint per zone.
func StartProxy(ctx context.Context, table *Table, opts ProxyOptions) (*Proxy, error) {
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1"
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	opts.Limits = opts.Limits.withDefaults()
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	conns := &connLimit{max: int64(opts.Limits.MaxConnections), log: opts.Log}
	p := &Proxy{
		table:    table,
		log:      opts.Log,
		rec:      opts.Recorder,
		recZonal: opts.RecordZonal,
		dial:     dialer.DialContext,
		limits:   opts.Limits,
		// For what the per-target fast path does not take on (see h1Transport).
		transport: &http.Transport{
			DialContext:           dialer.DialContext,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: opts.Limits.ResponseTimeout,
			DisableCompression:    true, // a proxy passes encodings through
		},
		routes: make(map[Target]*route),
		zonal:  make(map[string]string),
	}
	start := func(addr string, h http.Handler, pick func() *Target, record bool) (string, error) {
		if addr == "" {
			addr = net.JoinHostPort(opts.Listen, "0")
		}
		tcp, err := net.Listen("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("frontdoor: listen on %s: %w", addr, err)
		}
		ln := &limitedListener{Listener: tcp, lim: conns}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: opts.Limits.HeaderTimeout, IdleTimeout: opts.Limits.IdleTimeout,
			MaxHeaderBytes: opts.Limits.netHTTPHeaderBytes(), ErrorLog: slog.NewLogLogger(opts.Log.Handler(), slog.LevelDebug)}
		var serveLn net.Listener = ln
		p.mu.Lock()
		p.servers = append(p.servers, srv)
		if !opts.NetHTTPOnly {
			e := &fastEndpoint{p: p, pick: pick, record: record, ln: ln, handoff: newHandoffListener(ln.Addr()), conns: make(map[net.Conn]struct{})}
			p.endpoints = append(p.endpoints, e)
			serveLn = e.handoff
			go e.serve()
		}
		p.mu.Unlock()
		go func() {
			if err := srv.Serve(serveLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				p.log.Error("frontdoor endpoint stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
		return "http://" + ln.Addr().String(), nil
	}
	var err error
	if p.regional, err = start(opts.Regional, http.HandlerFunc(p.serveRegional), func() *Target { return p.table.Snapshot().PickRegional() }, true); err != nil {
		p.Close()
		return nil, err
	}
	for _, z := range table.Zones() {
		zone := z
		u, err := start(opts.Zonal[zone], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serveZonal(w, r, zone) }),
			func() *Target { return p.table.Snapshot().PickZonal(zone) }, opts.RecordZonal)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.zonal[zone] = u
	}
	go func() {
		<-ctx.Done()
		p.Close()
	}()
	return p, nil
}

// RegionalURL is the base URL of the regional endpoint.
func (p *Proxy) RegionalURL() string { return p.regional }

// ZonalURL is the base URL of the zone's own endpoint.
func (p *Proxy) ZonalURL(zone string) string { return p.zonal[zone] }

// Close stops every endpoint at once; in-flight requests are cut.
func (p *Proxy) Close() {
	p.mu.Lock()
	servers, endpoints := p.servers, p.endpoints
	p.servers, p.endpoints = nil, nil
	p.mu.Unlock()
	// Servers first: closing an endpoint closes its server's (handoff) listener.
	for _, s := range servers {
		s.Close()
	}
	for _, e := range endpoints {
		e.close()
	}
	p.mu.RLock()
	for _, rt := range p.routes {
		rt.pool.closeIdle(true)
	}
	p.mu.RUnlock()
	p.transport.CloseIdleConnections()
}

func (p *Proxy) serveRegional(w http.ResponseWriter, r *http.Request) {
	p.forward(w, r, p.table.Snapshot().PickRegional(), true)
}

func (p *Proxy) serveZonal(w http.ResponseWriter, r *http.Request, zone string) {
	p.forward(w, r, p.table.Snapshot().PickZonal(zone), p.recZonal)
}

func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, t *Target, record bool) {
	if len(r.TransferEncoding) > 0 {
		// RFC 9112 §6.3: a request framed by Transfer-Encoding may also have
		// carried a Content-Length (net/http drops it before the handler can
		// see it) and been an attempt at smuggling: serve it by its chunked
		// framing, as net/http parsed it, and close the connection after.
		w.Header().Set("Connection", "close")
	}
	if t == nil {
		http.Error(w, "no healthy target", http.StatusServiceUnavailable)
		return
	}
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		// The body comes from the client: bound how long it may take, and
		// keep what goes wrong reading it, and how long the client made the
		// proxy wait, apart from what the backend did.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(p.limits.BodyTimeout))
		cb := &clientBody{rc: r.Body}
		r.Body = cb
		r = r.WithContext(context.WithValue(r.Context(), clientBodyKey{}, cb))
	}
	if rt := p.routeFor(t); record {
		rt.rp.ServeHTTP(w, r)
	} else {
		rt.rpQuiet.ServeHTTP(w, r)
	}
}

// routeFor returns the target's route, built once: each target gets its
// own reverse proxy so the request path needs no per-request context to
// carry the choice.
func (p *Proxy) routeFor(t *Target) *route {
	p.mu.RLock()
	rt := p.routes[*t]
	p.mu.RUnlock()
	if rt != nil {
		return rt
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if rt = p.routes[*t]; rt != nil {
		return rt
	}
	tg := *t
	rt = &route{
		target: tg,
		pool: &h1Transport{addr: tg.Addr, dial: p.dial, fallback: p.transport, maxIdle: 256, idleTime: 90 * time.Second,
			responseTimeout: p.limits.ResponseTimeout},
	}
	var transport http.RoundTripper = rt.pool
	if p.rec != nil {
		rt.ops = &opSeries{rec: p.rec, zone: tg.Zone, instance: tg.ID}
		transport = &recordingTransport{base: rt.pool, ops: rt.ops}
	}
	u := &url.URL{Scheme: "http", Host: tg.Addr}
	rp := httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
			// A client that hangs up must not cut the exchange: the
			// target's answer (or failure) is then recorded as it is, and
			// the hang-up is never taken for the target's fault. The fast
			// path behaves the same way.
			pr.Out = pr.Out.WithContext(context.WithoutCancel(pr.Out.Context()))
		},
		Transport:  transport,
		BufferPool: bufferPool{},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if cb := clientBodyOf(r); cb != nil && cb.failed() {
				// The client's body was short, malformed or too slow: its
				// error, not the target's.
				w.Header().Set("Connection", "close")
				http.Error(w, cb.status().text, cb.status().code)
				return
			}
			w.Header().Set("X-Grayzone-Zone", tg.Zone)
			w.Header().Set("X-Grayzone-Instance", tg.ID)
			w.WriteHeader(gatewayStatus(err))
		},
	}
	quiet := rp
	quiet.Transport = rt.pool
	rt.rp, rt.rpQuiet = &rp, &quiet
	p.routes[tg] = rt
	return rt
}

// recordingTransport records each round trip to one target on the net/http
// path: the latency from sending the request to having the response's
// headers, less the time spent waiting for the client's body, and the
// outcome from the status, or a fault for a transport error. An error the
// client caused — it went away, or its body was short, malformed or too
// slow — is the client's: observation.Error, never a fault. A client that
// hangs up does not cut the exchange (forward detaches it, as the fast
// path does), so what the target then does is recorded as it happened.
type recordingTransport struct {
	base http.RoundTripper
	ops  *opSeries
}

// maxOpsPerTarget bounds the series one target can make from request paths
// that name no configured operation; further ones are recorded as otherOp.
// A configured operation always gets its own series: otherwise a caller
// could use up the slots with made-up paths and have a configured
// operation's requests judged by the default threshold in otherOp.
const (
	maxOpsPerTarget = 64
	otherOp         = "other"
)

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	s := rt.ops.series(operationOf(req.URL.Path))
	cb := clientBodyOf(req)
	start := monoNow()
	resp, err := rt.base.RoundTrip(req)
	lat := monoNow() - start
	if cb != nil {
		lat = max(0, lat-cb.waited())
	}
	switch {
	case err == nil:
		s.Observe(observation.FromStatus(resp.StatusCode), lat)
	case cb != nil && cb.failed():
		// No answer came: no response time to hold against the target.
		s.Observe(observation.Error, 0)
	default:
		s.Observe(observation.Fault, lat)
	}
	return resp, err
}

// opSeries resolves one target's series per operation, lazily, with a
// lock-free read side: a map replaced whole on each new operation.
type opSeries struct {
	rec            *record.Recorder
	zone, instance string

	mu  sync.Mutex                                // serialises misses
	ops atomic.Pointer[map[string]*record.Series] // copied on write
}

// series returns the operation's series, resolving it on first use.
func (o *opSeries) series(op string) *record.Series {
	if m := o.ops.Load(); m != nil {
		if s := (*m)[op]; s != nil {
			return s
		}
	}
	return o.resolve(op)
}

// seriesBytes is series for an operation name in a byte slice, without
// allocating when it is known.
func (o *opSeries) seriesBytes(op []byte) *record.Series {
	if m := o.ops.Load(); m != nil {
		if s := (*m)[string(op)]; s != nil {
			return s
		}
	}
	return o.resolve(string(op))
}

func (o *opSeries) resolve(op string) *record.Series {
	o.mu.Lock()
	defer o.mu.Unlock()
	var old map[string]*record.Series
	if m := o.ops.Load(); m != nil {
		old = *m
	}
	if s := old[op]; s != nil {
		return s
	}
	if len(old) >= maxOpsPerTarget && !o.rec.Configured(op) {
		if s := old[otherOp]; s != nil {
			return s
		}
		op = otherOp
	}
	s := o.rec.Series(observation.Server, o.zone, o.instance, strings.Clone(op))
	m := make(map[string]*record.Series, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[s.Key().Operation] = s
	o.ops.Store(&m)
	return s
}

// operationOf is a request path's first segment: "/orders/7" → "orders".
func operationOf(path string) string { return observation.OperationOf(path) }

var buffers = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

type bufferPool struct{}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

// HealthChecker probes every target's shallow /health and feeds the table,
// as a load balancer does.
type HealthChecker struct {
	Table    *Table
	Path     string        // default /health
	Interval time.Duration // default 1s
	Timeout  time.Duration // default Interval/2
	Clock    clock.Clock   // default real
	Client   *http.Client
	Log      *slog.Logger
	// Phase, when more than 0 (and less than Interval), makes the first
	// checks Phase after Run starts, and the next every Interval after
	// them, instead of every Interval from Run's start: a process running
	// many checkers (a fleet in one serve) gives each its own phase, so
	// their checks fall evenly over the interval rather than all at once —
	// thousands of goroutines made runnable in the same instant queued the
	// engine's tick behind them for up to a second.
	Phase time.Duration
}

// Run checks until ctx ends.
func (h *HealthChecker) Run(ctx context.Context) {
	if h.Interval <= 0 {
		h.Interval = time.Second
	}
	if h.Path == "" {
		h.Path = "/health"
	}
	if h.Timeout <= 0 {
		h.Timeout = h.Interval / 2
	}
	if h.Clock == nil {
		h.Clock = clock.Real{}
	}
	// Without a Client of the caller's, each target has a connection of
	// the checker's own, kept between checks (the default transport keeps
	// 100 idle connections for the whole process: with more targets than
	// that, a fleet of resources in one serve, nearly every check dialed
	// anew, thousands of connections a second, each leaving a TIME_WAIT
	// behind, until the ephemeral ports ran out), and a check is written
	// and read on its own goroutine as the fast path's requests are
	// (h1Transport), not handed to the two goroutines per connection of an
	// http.Transport: at fleet size that hand-off was most of a check's
	// CPU and allocations.
	clients := map[string]*http.Client{} // by target address
	dial := (&net.Dialer{Timeout: h.Timeout}).DialContext
	// A GET check is always on the fast path; the fallback is there for
	// the transport's contract, and dials with the check's timeout too.
	fallback := &http.Transport{DisableCompression: true, DialContext: dial}
	defer func() {
		for _, c := range clients {
			c.Transport.(*h1Transport).closeIdle(true)
		}
		fallback.CloseIdleConnections()
	}()
	clientFor := func(addr string) *http.Client {
		if h.Client != nil {
			return h.Client
		}
		c := clients[addr]
		if c == nil {
			c = &http.Client{Transport: &h1Transport{addr: addr, dial: dial, fallback: fallback, maxIdle: 1,
				idleTime: max(90*time.Second, 3*h.Interval), responseTimeout: h.Timeout},
				// The transport reaches the target only: a redirect to
				// another host is answered as it is (not 200: unhealthy).
				CheckRedirect: func(req *http.Request, _ []*http.Request) error {
					if req.URL.Host != addr {
						return http.ErrUseLastResponse
					}
					return nil
				}}
			clients[addr] = c
		}
		return c
	}
	if h.Log == nil {
		h.Log = slog.Default()
	}
	first := false
	if h.Phase > 0 && h.Phase < h.Interval {
		select {
		case <-ctx.Done():
			return
		case <-h.Clock.After(h.Phase):
		}
		first = true
	}
	tick, stop := h.Clock.NewTicker(h.Interval)
	defer stop()
	var targets []TargetStatus // the round's, reused from round to round
	for {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-tick:
			}
		}
		first = false
		var wg sync.WaitGroup
		checked := 0
		targets = h.Table.AppendTargets(targets[:0])
		for _, ts := range targets {
			if ts.Addr == "" {
				continue
			}
			checked++
			client := clientFor(ts.Addr)
			wg.Add(1)
			warm.Go(func() { // a grown stack: an HTTP exchange needs several KiB
				defer wg.Done()
				ok := h.check(ctx, client, ts.Addr)
				if h.Table.ReportHealth(ts.ID, ok) {
					h.Log.Info("health check changed target state", "target", ts.ID, "healthy", ok)
				}
			})
		}
		wg.Wait()
		if len(clients) > checked { // targets gone (EndpointSlices churn): their connections too
			current := map[string]bool{}
			for _, ts := range targets {
				current[ts.Addr] = true
			}
			for addr, c := range clients {
				if !current[addr] {
					c.Transport.(*h1Transport).closeIdle(true)
					delete(clients, addr)
				}
			}
		}
	}
}

func (h *HealthChecker) check(ctx context.Context, client *http.Client, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+h.Path, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	// Read what little a health answer has, so the connection is kept for
	// the next check (an unread body closes it).
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Actuator applies zonal shifts to the table: the embedded front door's data plane.
type Actuator struct{ Table *Table }

// Apply implements actuator.Actuator.
func (a Actuator) Apply(_ context.Context, act actuator.Action) error {
	switch act.Kind {
	case actuator.ShiftAway:
		return a.Table.SetShifted(act.Zone, true)
	case actuator.EndShift:
		return a.Table.SetShifted(act.Zone, false)
	case actuator.SetWeight:
		return a.Table.SetWeight(act.Zone, act.Weight)
	}
	return fmt.Errorf("frontdoor: %s: %w", act, actuator.ErrUnsupported)
}

// SetWeight implements actuator.Weigher.
func (a Actuator) SetWeight(_ context.Context, zone string, percent int) error {
	return a.Table.SetWeight(zone, percent)
}
