package frontdoor

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grayzone/grayzone/telemetry/record"
)

// TestConnectionCap: past MaxConnections a new client connection is
// answered 503 and closed; a place freed is taken again.
func TestConnectionCap(t *testing.T) {
	be := echoBackend(t)
	for _, netHTTP := range []bool{false, true} {
		t.Run(fmt.Sprintf("NetHTTPOnly=%v", netHTTP), func(t *testing.T) {
			p := oneTargetProxy(t, be.Listener.Addr().String(), ProxyOptions{NetHTTPOnly: netHTTP, Limits: Limits{MaxConnections: 2}})
			addr := strings.TrimPrefix(p.RegionalURL(), "http://")
			get := func(c net.Conn) (int, error) {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write([]byte("GET /a HTTP/1.1\r\nHost: h\r\n\r\n")); err != nil {
					return 0, err
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					return 0, err
				}
				resp.Body.Close()
				return resp.StatusCode, nil
			}
			dial := func() net.Conn {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				return c
			}
			held := []net.Conn{dial(), dial()}
			for _, c := range held {
				if st, err := get(c); st != 200 {
					t.Fatalf("under the cap: %d %v", st, err)
				}
			}
			if st, err := get(dial()); st != http.StatusServiceUnavailable {
				t.Fatalf("past the cap: %d %v, want 503", st, err)
			}
			held[0].Close()
			// The front door notices the close on its next read of that connection.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if st, _ := get(dial()); st == 200 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("a freed place was not taken again")
				}
			}
		})
	}
}

// TestResponseTimeout: a backend that takes the request and never answers
// is answered 504 after ResponseTimeout and counted as the target's fault.
func TestResponseTimeout(t *testing.T) {
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
			t.Cleanup(func() { c.Close() }) // read nothing, answer nothing
		}
	}()
	for _, netHTTP := range []bool{false, true} {
		t.Run(fmt.Sprintf("NetHTTPOnly=%v", netHTTP), func(t *testing.T) {
			rec := record.New(record.Options{})
			p := oneTargetProxy(t, ln.Addr().String(), ProxyOptions{NetHTTPOnly: netHTTP, Recorder: rec, Limits: Limits{ResponseTimeout: 200 * time.Millisecond}})
			c := &http.Client{Timeout: 30 * time.Second}
			resp, err := c.Get(p.RegionalURL() + "/slow")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusGatewayTimeout {
				t.Fatalf("status %d, want 504", resp.StatusCode)
			}
			if s := sumUntil(t, rec, 1); s.Faults != 1 {
				t.Fatalf("recorded %+v, want one fault", s)
			}
		})
	}
}

// scriptedBackend answers the n-th request head (from 0, over all its
// connections) with answer(n, conn) and counts the connections it accepted.
func scriptedBackend(t *testing.T, answer func(n int, c net.Conn)) (addr string, conns *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int64)
	var reqs atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			t.Cleanup(func() { c.Close() })
			go func() {
				br := bufio.NewReader(c)
				for {
					for {
						l, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(l) <= 2 {
							break
						}
					}
					answer(int(reqs.Add(1)-1), c)
				}
			}()
		}
	}()
	return ln.Addr().String(), conns
}

// TestResponseTimeoutKeptConnection: the response-head deadline a kept-alive
// backend connection keeps between requests (awaitHead) neither cuts a
// later request on it once it has passed while the connection was idle, nor
// bounds a body that arrives after its head, nor stops bounding the next
// head: a backend silent after a streamed answer still gets a 504.
func TestResponseTimeoutKeptConnection(t *testing.T) {
	const timeout = 200 * time.Millisecond
	addr, conns := scriptedBackend(t, func(n int, c net.Conn) {
		switch n {
		case 0, 1, 3: // at once
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		case 2: // the head at once, the body after three response timeouts
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nsl")
			time.Sleep(3 * timeout)
			io.WriteString(c, "ow")
		default: // never
		}
	})
	p := oneTargetProxy(t, addr, ProxyOptions{Limits: Limits{ResponseTimeout: timeout}})
	c := &http.Client{Timeout: 30 * time.Second}
	get := func(want int, body string) {
		t.Helper()
		resp, err := c.Get(p.RegionalURL() + "/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || string(b) != body {
			t.Fatalf("status %d body %q, want %d %q", resp.StatusCode, b, want, body)
		}
	}
	get(200, "ok")
	time.Sleep(2 * timeout) // the deadline set for the first request passes while idle
	get(200, "ok")
	get(200, "slow")
	get(200, "ok")
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d backend connections, want the one kept alive", n)
	}
	get(http.StatusGatewayTimeout, "")
}

// BenchmarkResponseDeadline is what the response timeout adds to each
// proxied request. set+lift: what it cost when every request set the
// read deadline on the backend connection once the request was sent and
// lifted it once the response head was in (a wall-clock read and two
// runtime-poller timer updates). kept: what it costs now that a kept-alive
// connection keeps its deadline while bodies arrive with their heads
// (awaitHead: one comparison per request, a timer update every d/8).
//
//	go test -run '^$' -bench ResponseDeadline ./actuator/frontdoor/
func BenchmarkResponseDeadline(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	c := &h1Conn{Conn: nc}
	b.Run("set+lift", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.SetReadDeadline(time.Now().Add(DefaultResponseTimeout))
			c.SetReadDeadline(time.Time{})
		}
	})
	b.Run("kept", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.awaitHead(monoNow(), DefaultResponseTimeout)
		}
	})
}

// TestCopyChunked: a chunked response body is relayed verbatim (with
// extensions and trailers) without an allocation; a chunk size is hex
// digits only, no sign, as net/http's chunked reader wants it.
func TestCopyChunked(t *testing.T) {
	body := "5\r\nhello\r\nA;ext=1\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n"
	src := strings.NewReader(body)
	br, bw := bufio.NewReader(src), bufio.NewWriter(io.Discard)
	allocs := testing.AllocsPerRun(100, func() {
		src.Reset(body)
		br.Reset(src)
		if err := copyChunked(bw, br); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per body", allocs)
	}
	for _, bad := range []string{"+5", "-1", "", "0x5", "1234567890abcdef", "g"} {
		if _, ok := chunkSize([]byte(bad)); ok {
			t.Errorf("chunk size %q accepted", bad)
		}
	}
	if n, ok := chunkSize([]byte("fFf")); !ok || n != 0xfff {
		t.Errorf("fFf: %d %v", n, ok)
	}
}
