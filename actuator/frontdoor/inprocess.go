package frontdoor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ErrNotInProcess is DialContext's answer for an address that is not one of
// the proxy's own endpoints on the fast path: the caller dials a socket.
var ErrNotInProcess = errors.New("frontdoor: not an in-process endpoint")

// DialContext connects to one of the proxy's own endpoints (addr is its
// host:port, as in RegionalURL and ZonalURL) in memory: the server side of a
// net.Pipe is served by the endpoint's fast path exactly as an accepted
// socket is (the same parsing, limits, connection cap, target pick,
// recording and forwarding), but no descriptor is spent on either side.
// serve's canaries call their own front door this way: over loopback each
// of their connections cost two descriptors in the one process.
//
// Any other address, and every address of a proxy without the fast path
// (NetHTTPOnly), is answered with ErrNotInProcess.
func (p *Proxy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return nil, ErrNotInProcess
	}
	e := p.endpoint(addr)
	if e == nil {
		return nil, ErrNotInProcess
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	client, server := net.Pipe()
	var sc net.Conn = server
	if ll, ok := e.ln.(*limitedListener); ok {
		// Under the same cap as the endpoint's sockets.
		if ll.lim.open.Add(1) > ll.lim.max {
			ll.lim.open.Add(-1)
			client.Close()
			server.Close()
			return nil, fmt.Errorf("frontdoor: %s: connection cap of %d reached", addr, ll.lim.max)
		}
		sc = &countedConn{Conn: server, lim: ll.lim}
	}
	if !e.track(sc, true) {
		sc.Close()
		client.Close()
		return nil, fmt.Errorf("frontdoor: %s: %w", addr, net.ErrClosed)
	}
	go e.serveConn(sc)
	return client, nil
}

// endpoint returns the proxy's endpoint listening on addr, or nil.
func (p *Proxy) endpoint(addr string) *fastEndpoint {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, ep := range p.endpoints {
		if ep.ln.Addr().String() == addr {
			return ep
		}
	}
	return nil
}

// InProcessTransport is a round tripper to one of the proxy's own endpoints
// (addr as for DialContext) over in-memory connections (DialContext), at
// most maxIdle of them kept between requests. Each request is written and
// its answer read on the caller's goroutine, by the client of the proxy's
// fast path, instead of by the two goroutines an http.Transport runs per
// connection: serve's canaries, thousands a minute in a fleet, call their
// own front doors this way. Any other address is ErrNotInProcess.
func (p *Proxy) InProcessTransport(addr string, maxIdle int) (http.RoundTripper, error) {
	if p.endpoint(addr) == nil {
		return nil, ErrNotInProcess
	}
	return &h1Transport{addr: addr, dial: p.DialContext, fallback: p.transport, maxIdle: max(1, maxIdle), idleTime: 90 * time.Second,
		responseTimeout: p.limits.ResponseTimeout}, nil
}
