package frontdoor

import (
	"context"
	"errors"
	"fmt"
	"net"
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
	var e *fastEndpoint
	p.mu.RLock()
	for _, ep := range p.endpoints {
		if ep.ln.Addr().String() == addr {
			e = ep
			break
		}
	}
	p.mu.RUnlock()
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
