package frontdoor

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// An in-process connection takes the endpoint's real path: the zonal
// endpoint answers from its own zone's targets, shifts apply, and the
// connection is a pipe, not a socket.
func TestDialContextServesInMemory(t *testing.T) {
	f := startFleet(t, []string{"az1", "az2"}, 1, DefaultHealthPolicy)
	ctx := context.Background()
	addr := strings.TrimPrefix(f.proxy.ZonalURL("az2"), "http://")
	c, err := f.proxy.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if n := c.LocalAddr().Network(); n != "pipe" {
		t.Errorf("connection's network %q, want pipe (no socket)", n)
	}
	c.Close()

	tr := &http.Transport{DialContext: f.proxy.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	mem := *f // the same fleet, called through the in-process dialer
	mem.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	assertCounts(t, "zonal az2 in memory", mem.send(t, f.proxy.ZonalURL("az2"), 10), map[string]int{"az2-1": 10})
	assertCounts(t, "regional in memory", byZone(mem.send(t, f.proxy.RegionalURL(), 20)), map[string]int{"az1": 10, "az2": 10})
	if err := f.table.SetShifted("az1", true); err != nil {
		t.Fatal(err)
	}
	assertCounts(t, "regional in memory, az1 shifted", byZone(mem.send(t, f.proxy.RegionalURL(), 10)), map[string]int{"az2": 10})

	// Not one of its endpoints, or a network it does not serve: the caller dials.
	for _, a := range [][2]string{{"tcp", "127.0.0.1:1"}, {"udp", addr}} {
		if _, err := f.proxy.DialContext(ctx, a[0], a[1]); !errors.Is(err, ErrNotInProcess) {
			t.Errorf("DialContext(%s, %s): %v, want ErrNotInProcess", a[0], a[1], err)
		}
	}
	// Closed: nothing is served in memory any more.
	f.proxy.Close()
	if _, err := f.proxy.DialContext(ctx, "tcp", addr); !errors.Is(err, ErrNotInProcess) {
		t.Errorf("DialContext after Close: %v, want ErrNotInProcess", err)
	}
}

// Without the fast path there is no in-process entry: the caller dials.
func TestDialContextNetHTTPOnly(t *testing.T) {
	tb := NewTable([]string{"az1"}, DefaultHealthPolicy)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := StartProxy(ctx, tb, ProxyOptions{Log: quiet, NetHTTPOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.DialContext(ctx, "tcp", strings.TrimPrefix(p.RegionalURL(), "http://")); !errors.Is(err, ErrNotInProcess) {
		t.Errorf("DialContext with NetHTTPOnly: %v, want ErrNotInProcess", err)
	}
}

// InProcessTransport calls an endpoint through in-memory connections on
// the caller's goroutine, keeps one for the next call, and knows no other
// address.
func TestInProcessTransport(t *testing.T) {
	f := startFleet(t, []string{"az1", "az2"}, 1, DefaultHealthPolicy)
	addr := strings.TrimPrefix(f.proxy.ZonalURL("az2"), "http://")
	tr, err := f.proxy.InProcessTransport(addr, 1)
	if err != nil {
		t.Fatal(err)
	}
	mem := *f
	mem.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	assertCounts(t, "zonal az2 in memory", mem.send(t, f.proxy.ZonalURL("az2"), 10), map[string]int{"az2-1": 10})
	if h := tr.(*h1Transport); len(h.idle) != 1 || h.idle[0].LocalAddr().Network() != "pipe" {
		t.Errorf("kept %d connections (want 1, a pipe)", len(h.idle))
	}
	if _, err := f.proxy.InProcessTransport("127.0.0.1:1", 1); !errors.Is(err, ErrNotInProcess) {
		t.Errorf("InProcessTransport of another address: %v, want ErrNotInProcess", err)
	}
}
