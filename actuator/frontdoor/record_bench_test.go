package frontdoor

import (
	"bufio"
	"net"
	"strings"
	"testing"

	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// BenchmarkFrontDoorRecord measures what recording adds to a proxied
// request.
//
//   - recording-only: the per-request work alone, as the fast path does it:
//     find the target's series for the operation, read the monotonic clock
//     twice, Observe.
//
//   - proxy/recorder=off|on: whole requests through the fast path to a
//     loopback backend, one connection, one request at a time; the
//     difference is the recording overhead (within noise: a request is
//     tens of microseconds). Client and backend are raw and allocate
//     nothing, so allocs/op is the front door's.
//
//     go test -run '^$' -bench FrontDoorRecord -benchmem ./frontdoor/
func BenchmarkFrontDoorRecord(b *testing.B) {
	b.Run("recording-only", func(b *testing.B) {
		ops := &opSeries{rec: record.New(record.Options{}), zone: "az1", instance: "az1-1"}
		req := fastReq{target: []byte("/orders/7?x=1")}
		b.ReportAllocs()
		for b.Loop() {
			s := ops.seriesBytes(req.operation())
			start := monoNow()
			s.Observe(observation.FromStatus(200), monoNow()-start)
		}
	})
	for _, on := range []bool{false, true} {
		name := "proxy/recorder=off"
		if on {
			name = "proxy/recorder=on"
		}
		b.Run(name, func(b *testing.B) {
			backend := rawServer(b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("x", 100))
			var opts ProxyOptions
			if on {
				opts.Recorder = record.New(record.Options{})
			}
			tb := NewTable([]string{"az1"}, DefaultHealthPolicy)
			tb.AddTarget(Target{ID: "az1-1", Zone: "az1", Addr: backend})
			opts.Log = quiet
			p, err := StartProxy(b.Context(), tb, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			c, err := net.Dial("tcp", strings.TrimPrefix(p.RegionalURL(), "http://"))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			req := []byte("GET /orders/7 HTTP/1.1\r\nHost: h\r\n\r\n")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if err := readFixedResponse(br, 100); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// rawServer answers every request head on every connection with resp; no
// allocation per request, so that allocs/op is the front door's.
func rawServer(b *testing.B, resp string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				out := []byte(resp)
				for {
					if err := skipHead(br); err != nil {
						return
					}
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func skipHead(br *bufio.Reader) error {
	for {
		l, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(l) <= 2 {
			return nil
		}
	}
}

// readFixedResponse reads a response head and a body of n bytes.
func readFixedResponse(br *bufio.Reader, n int) error {
	if err := skipHead(br); err != nil {
		return err
	}
	_, err := br.Discard(n)
	return err
}
