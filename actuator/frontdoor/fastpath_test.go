package frontdoor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grayzone/grayzone/internal/freeport"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// echoBackend answers every request with what it received: method, URI,
// Host, headers (sorted, one per line) and body. /chunked answers in chunks
// with a trailer; /nobody answers 204; /head-len answers with a
// Content-Length but is probed with HEAD.
func echoBackend(t *testing.T, configure ...func(*http.Server)) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "part one,")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part two")
			w.Header().Set("X-Sum", "42")
			return
		case "/nobody":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/status/404":
			http.NotFound(w, r)
			return
		case "/status/500":
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var hs []string
		for k, vv := range r.Header {
			hs = append(hs, k+": "+strings.Join(vv, ","))
		}
		slices.Sort(hs)
		w.Header().Set("X-Echo", "1")
		w.Header().Set("Keep-Alive", "timeout=5") // hop-by-hop: must not reach the client
		fmt.Fprintf(w, "%s %s host=%s proto=%s\n%s\nbody=%q\n", r.Method, r.RequestURI, r.Host, r.Proto, strings.Join(hs, "\n"), body)
	}))
	for _, f := range configure {
		f(srv.Config)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func oneTargetProxy(t *testing.T, addr string, opts ProxyOptions) *Proxy {
	t.Helper()
	tb := NewTable([]string{"az1"}, DefaultHealthPolicy)
	if err := tb.AddTarget(Target{ID: "az1-1", Zone: "az1", Addr: addr}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	opts.Log = quiet
	p, err := StartProxy(ctx, tb, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); p.Close() })
	return p
}

// exchange sends raw bytes on a new connection and reads n responses.
func rawExchange(t *testing.T, base, raw string, n int, methods ...string) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for i := range n {
		req := &http.Request{Method: "GET"}
		if i < len(methods) {
			req.Method = methods[i]
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", i+1, err)
		}
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		out = append(out, resp)
	}
	return out
}

func bodyOf(r *http.Response) string {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(strings.NewReader(string(b)))
	return string(b)
}

// TestFastPathMatchesNetHTTPPath sends the same raw requests through the
// fast path and through net/http + ReverseProxy (NetHTTPOnly) and compares
// what the backend saw and what the client got.
func TestFastPathMatchesNetHTTPPath(t *testing.T) {
	be := echoBackend(t)
	addr := be.Listener.Addr().String()
	fast := oneTargetProxy(t, addr, ProxyOptions{})
	slow := oneTargetProxy(t, addr, ProxyOptions{NetHTTPOnly: true})
	cases := []struct {
		name, raw string
		n         int
		methods   []string
	}{
		{"plain GET", "GET /orders/7?verbose=1&x=%2F HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: t/1\r\nAccept: */*\r\n\r\n", 1, nil},
		{"hop-by-hop and forwarded headers dropped", "GET /a HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nKeep-Alive: 300\r\nProxy-Connection: x\r\nProxy-Authorization: secret\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nForwarded: for=1.2.3.4\r\nX-Custom: kept\r\n\r\n", 1, nil},
		{"repeated header", "GET /a HTTP/1.1\r\nHost: h\r\nX-Multi: 1\r\nX-Multi: 2\r\nCookie: a=1\r\n\r\n", 1, nil},
		{"POST with body", "POST /pay HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world", 1, nil},
		{"empty POST", "POST /pay HTTP/1.1\r\nHost: h\r\n\r\n", 1, nil},
		{"pipelined", "GET /one HTTP/1.1\r\nHost: h\r\n\r\nGET /two HTTP/1.1\r\nHost: h\r\n\r\n", 2, nil},
		{"chunked request body (net/http path)", "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 1, nil},
		{"HTTP/1.0 (net/http path)", "GET /old HTTP/1.0\r\nHost: h\r\n\r\n", 1, nil},
		{"Expect (net/http path)", "PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok", 1, nil},
		{"Connection option naming a header (net/http path)", "GET /a HTTP/1.1\r\nHost: h\r\nConnection: X-Private\r\nX-Private: drop me\r\n\r\n", 1, nil},
		{"odd target (net/http path)", "GET /a%20b/\"q\" HTTP/1.1\r\nHost: h\r\n\r\n", 1, nil},
		{"large head (net/http path)", "GET /big HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("b", 6000) + "\r\n\r\n", 1, nil},
		{"chunked response with trailer", "GET /chunked HTTP/1.1\r\nHost: h\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n", 2, nil},
		{"204", "GET /nobody HTTP/1.1\r\nHost: h\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n", 2, nil},
		{"HEAD", "HEAD /head-len HTTP/1.1\r\nHost: h\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n", 2, []string{"HEAD"}},
		{"error statuses", "GET /status/404 HTTP/1.1\r\nHost: h\r\n\r\nGET /status/500 HTTP/1.1\r\nHost: h\r\n\r\n", 2, nil},
		{"client asks to close", "GET /bye HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := rawExchange(t, fast.RegionalURL(), c.raw, c.n, c.methods...)
			want := rawExchange(t, slow.RegionalURL(), c.raw, c.n, c.methods...)
			for i := range got {
				g, w := got[i], want[i]
				if g.StatusCode != w.StatusCode {
					t.Errorf("response %d: status %d, net/http path %d", i+1, g.StatusCode, w.StatusCode)
				}
				if gb, wb := bodyOf(g), bodyOf(w); gb != wb {
					t.Errorf("response %d: body\n%s\nnet/http path:\n%s", i+1, gb, wb)
				}
				for _, h := range []string{"Content-Type", "X-Echo", "Keep-Alive", "X-Content-Type-Options"} {
					if g.Header.Get(h) != w.Header.Get(h) {
						t.Errorf("response %d: %s %q, net/http path %q", i+1, h, g.Header.Get(h), w.Header.Get(h))
					}
				}
				if g.Close != w.Close {
					t.Errorf("response %d: close %v, net/http path %v", i+1, g.Close, w.Close)
				}
				if fmt.Sprint(g.Trailer) != fmt.Sprint(w.Trailer) {
					t.Errorf("response %d: trailer %v, net/http path %v", i+1, g.Trailer, w.Trailer)
				}
			}
		})
	}
}

func TestFastPathKeepsConnectionsAlive(t *testing.T) {
	var conns atomic.Int32
	be := echoBackend(t, func(s *http.Server) {
		s.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
	})
	p := oneTargetProxy(t, be.Listener.Addr().String(), ProxyOptions{})
	var raw strings.Builder
	for i := range 20 {
		fmt.Fprintf(&raw, "GET /r%d HTTP/1.1\r\nHost: h\r\n\r\n", i)
	}
	for i, r := range rawExchange(t, p.RegionalURL(), raw.String(), 20) {
		if !strings.HasPrefix(bodyOf(r), fmt.Sprintf("GET /r%d ", i)) {
			t.Fatalf("response %d: %q", i, bodyOf(r))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("20 sequential requests took %d backend connections, want 1", n)
	}
}

// TestFastPathRetriesStaleBackendConnection: a kept-alive backend
// connection closed by the backend while idle is replaced transparently.
func TestFastPathRetriesStaleBackendConnection(t *testing.T) {
	be := echoBackend(t, func(s *http.Server) { s.IdleTimeout = 20 * time.Millisecond })
	p := oneTargetProxy(t, be.Listener.Addr().String(), ProxyOptions{})
	c := newClient(t)
	for i := range 3 {
		if r := get(t, c, p.RegionalURL()+"/x"); r.status != http.StatusOK {
			t.Fatalf("request %d: %d %q", i, r.status, r.body)
		}
		time.Sleep(60 * time.Millisecond)
	}
}

// TestFastPathCloseDelimitedResponse: a backend answering without length
// (HTTP/1.0 style, ending the connection) is relayed whole, and the client
// is told the connection closes.
func TestFastPathCloseDelimitedResponse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
			}()
		}
	}()
	p := oneTargetProxy(t, ln.Addr().String(), ProxyOptions{})
	rs := rawExchange(t, p.RegionalURL(), "GET /x HTTP/1.1\r\nHost: h\r\n\r\n", 1)
	if b := bodyOf(rs[0]); b != "until the end" || !rs[0].Close {
		t.Errorf("body %q, close %v", b, rs[0].Close)
	}
}

// TestFastPathRecords checks what the fast path records: operation = first
// path segment, outcome from the status, a fault for an unreachable target.
func TestFastPathRecords(t *testing.T) {
	for _, netHTTP := range []bool{false, true} {
		t.Run(fmt.Sprintf("NetHTTPOnly=%v", netHTTP), func(t *testing.T) {
			be := echoBackend(t)
			rec := record.New(record.Options{})
			p := oneTargetProxy(t, be.Listener.Addr().String(), ProxyOptions{Recorder: rec, NetHTTPOnly: netHTTP})
			c := newClient(t)
			for _, path := range []string{"/orders/1", "/orders/2?x=1", "/status/404", "/status/500", "/", "/pay"} {
				get(t, c, p.RegionalURL()+path)
			}
			got := map[string]record.Snapshot{}
			rec.Drain(func(k record.SeriesKey, d record.Snapshot) {
				if k.Source != observation.Server || k.Zone != "az1" || k.Instance != "az1-1" {
					t.Errorf("series %+v", k)
				}
				got[k.Operation] = d
			})
			if d := got["orders"]; d.Requests != 2 || d.Faults != 0 {
				t.Errorf("orders: %+v", d)
			}
			if d := got["status"]; d.Requests != 2 || d.Faults != 1 || d.Errors != 1 {
				t.Errorf("status: %+v", d)
			}
			if d := got[""]; d.Requests != 1 {
				t.Errorf("root: %+v", d)
			}
			if d := got["pay"]; d.Requests != 1 || d.Latency.Count() != 1 {
				t.Errorf("pay: %+v", d)
			}
		})
	}
	// An unreachable target: a fault, and a 502 naming it.
	rec := record.New(record.Options{})
	p := oneTargetProxy(t, freeport.Addr(t), ProxyOptions{Recorder: rec})
	if r := get(t, newClient(t), p.RegionalURL()+"/op"); r.status != http.StatusBadGateway {
		t.Fatalf("status %d", r.status)
	}
	var faults uint64
	rec.Drain(func(_ record.SeriesKey, d record.Snapshot) { faults += d.Faults })
	if faults != 1 {
		t.Errorf("%d faults recorded, want 1", faults)
	}
}

// TestFastPathHeaderTimeout: a client that starts a request head and stalls
// is cut after the header timeout... which is 5 s; here only check that a
// stalled head does not block other connections.
func TestFastPathStalledClientDoesNotBlockOthers(t *testing.T) {
	be := echoBackend(t)
	p := oneTargetProxy(t, be.Listener.Addr().String(), ProxyOptions{})
	c, err := net.Dial("tcp", strings.TrimPrefix(p.RegionalURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: h\r\n")
	if r := get(t, newClient(t), p.RegionalURL()+"/fast"); r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
}

func TestHeadEnd(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{"GET / HTTP/1.1\r\n\r\n", 18},
		{"GET / HTTP/1.1\r\nA: b\r\n\r\nrest", 24},
		{"GET / HTTP/1.1\n\n", 16},
		{"GET / HTTP/1.1\r\nA: b\r\n", 0},
		{"GET / HTTP/1.1\r\n\r", 0},
	} {
		if got := headEnd([]byte(c.in), 0); got != c.want {
			t.Errorf("headEnd(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestFastPathBadGatewayWithBody: a request body the unreachable target
// never read must not be taken for the next request: the connection ends.
func TestFastPathBadGatewayWithBody(t *testing.T) {
	p := oneTargetProxy(t, freeport.Addr(t), ProxyOptions{})
	rs := rawExchange(t, p.RegionalURL(), "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nGET GET /y HTTP/1.1\r\nHost: h\r\n\r\n", 1)
	if rs[0].StatusCode != http.StatusBadGateway || !rs[0].Close || rs[0].Header.Get("X-Grayzone-Instance") != "az1-1" {
		t.Errorf("status %d, close %v, headers %v", rs[0].StatusCode, rs[0].Close, rs[0].Header)
	}
}
