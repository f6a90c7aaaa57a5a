package frontdoor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
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

// BenchmarkResponseDeadline is what the response timeout adds to each
// proxied request: setting the read deadline on the backend connection
// once the request is sent, and lifting it once the response head is in
// (time.Now and two runtime-poller timer updates; no system call).
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
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c.awaitHead(DefaultResponseTimeout)
		c.headIn(ctx)
	}
}
