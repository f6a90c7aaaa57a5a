package frontdoor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/clock"
)

// Proxy serves a Table over HTTP: one regional listener and one listener per zone.
type Proxy struct {
	table     *Table
	transport *http.Transport
	log       *slog.Logger

	mu       sync.RWMutex
	proxies  map[Target]*httputil.ReverseProxy // keyed by the whole target: a re-registered id may move
	servers  []*http.Server
	regional string
	zonal    map[string]string
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
}

// StartProxy binds the regional endpoint and one zonal endpoint per zone.
func StartProxy(ctx context.Context, table *Table, opts ProxyOptions) (*Proxy, error) {
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1"
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	p := &Proxy{
		table: table,
		log:   opts.Log,
		transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
		proxies: make(map[Target]*httputil.ReverseProxy),
		zonal:   make(map[string]string),
	}
	start := func(addr string, h http.Handler) (string, error) {
		if addr == "" {
			addr = net.JoinHostPort(opts.Listen, "0")
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("frontdoor: listen on %s: %w", addr, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		p.servers = append(p.servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				p.log.Error("frontdoor endpoint stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
		return "http://" + ln.Addr().String(), nil
	}
	var err error
	if p.regional, err = start(opts.Regional, http.HandlerFunc(p.serveRegional)); err != nil {
		p.Close()
		return nil, err
	}
	for _, z := range table.Zones() {
		zone := z
		u, err := start(opts.Zonal[zone], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serveZonal(w, r, zone) }))
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
	servers := p.servers
	p.servers = nil
	p.mu.Unlock()
	for _, s := range servers {
		s.Close()
	}
	p.transport.CloseIdleConnections()
}

func (p *Proxy) serveRegional(w http.ResponseWriter, r *http.Request) {
	p.forward(w, r, p.table.Snapshot().PickRegional())
}

func (p *Proxy) serveZonal(w http.ResponseWriter, r *http.Request, zone string) {
	p.forward(w, r, p.table.Snapshot().PickZonal(zone))
}

func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, t *Target) {
	if t == nil {
		http.Error(w, "no healthy target", http.StatusServiceUnavailable)
		return
	}
	p.proxyFor(t).ServeHTTP(w, r)
}

// proxyFor returns the target's reverse proxy, built once: each target gets
// its own so the request path needs no per-request context to carry the choice.
func (p *Proxy) proxyFor(t *Target) *httputil.ReverseProxy {
	p.mu.RLock()
	rp := p.proxies[*t]
	p.mu.RUnlock()
	if rp != nil {
		return rp
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if rp = p.proxies[*t]; rp != nil {
		return rp
	}
	u := &url.URL{Scheme: "http", Host: t.Addr}
	rp = &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.Out.Host = pr.In.Host },
		Transport:  p.transport,
		BufferPool: bufferPool{},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("X-Grayzone-Zone", t.Zone)
			w.Header().Set("X-Grayzone-Instance", t.ID)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.proxies[*t] = rp
	return rp
}

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
	if h.Client == nil {
		h.Client = &http.Client{}
	}
	if h.Log == nil {
		h.Log = slog.Default()
	}
	tick, stop := h.Clock.NewTicker(h.Interval)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		var wg sync.WaitGroup
		for _, ts := range h.Table.Targets() {
			if ts.Addr == "" {
				continue
			}
			wg.Add(1)
			go func(ts TargetStatus) {
				defer wg.Done()
				ok := h.check(ctx, ts.Addr)
				if h.Table.ReportHealth(ts.ID, ok) {
					h.Log.Info("health check changed target state", "target", ts.ID, "healthy", ok)
				}
			}(ts)
		}
		wg.Wait()
	}
}

func (h *HealthChecker) check(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+h.Path, nil)
	if err != nil {
		return false
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		return false
	}
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
	}
	return fmt.Errorf("frontdoor: %s: %w", act, actuator.ErrUnsupported)
}
