package frontdoor

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grayzone/grayzone/telemetry/record"
)

// brokenRequest is one kind of request that fails because of the client.
type brokenRequest struct {
	name string
	// parts are written in order, with pause between them.
	parts []string
	pause time.Duration
	// end: "halfclose" closes the client's sending side and reads the
	// answer; "close" hangs up without reading; "read" reads the answer
	// with the connection left open.
	end  string
	want int // the status the client must get (0: none read)
	reps int
	// answered: the target answers it (the client left before reading),
	// so the target's outcome is recorded, not a client error.
	answered bool
	// rejected: the front door refuses it before any target sees it, and
	// records nothing.
	rejected bool
}

// brokenRequests is every kind of broken request the front door must hold
// against the client, not the target. The body timeout is bodyTimeout.
func brokenRequests() []brokenRequest {
	return []brokenRequest{
		{name: "body shorter than Content-Length", parts: []string{"POST /pay HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc"}, end: "halfclose", want: 400, reps: 300},
		{name: "hang up mid-body", parts: []string{"POST /pay HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc"}, end: "close", reps: 300},
		{name: "invalid chunk size", parts: []string{"POST /pay HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"}, end: "read", want: 400, reps: 300},
		{name: "chunk size overflow", parts: []string{"POST /pay HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n"}, end: "read", want: 400, reps: 300},
		{name: "chunked body cut short", parts: []string{"POST /pay HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc"}, end: "halfclose", want: 400, reps: 300},
		{name: "chunk extension abuse", parts: []string{"POST /pay HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;" + strings.Repeat("x", 8000) + "\r\nabc\r\n0\r\n\r\n"}, end: "read", want: 400, reps: 100},
		{name: "hang up before the answer", parts: []string{"GET /pay HTTP/1.1\r\nHost: h\r\n\r\n"}, end: "close", reps: 300, answered: true},
		{name: "invalid Content-Length", parts: []string{"POST /pay HTTP/1.1\r\nHost: h\r\nContent-Length: 4x\r\n\r\nabcd"}, end: "read", want: 400, reps: 300, rejected: true},
		{name: "oversized head", parts: []string{"GET /pay HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("b", 70<<10) + "\r\n\r\n"}, end: "read", want: 431, reps: 50, rejected: true},
		{name: "body too slow", parts: []string{"POST /pay HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc"}, end: "read", want: 408, reps: 10},
		{name: "chunked body too slow", parts: []string{"POST /pay HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"}, end: "read", want: 408, reps: 10},
	}
}

// bodyTimeout is the proxies' body timeout in these tests: short, so the
// slow-body cases end quickly.
const bodyTimeout = 1500 * time.Millisecond

// send plays one broken request and returns the status read (0 if none).
func (b brokenRequest) send(addr string) (int, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for i, p := range b.parts {
		if i > 0 {
			time.Sleep(b.pause) // the client's slowness is what is tested
		}
		if _, err := io.WriteString(c, p); err != nil {
			return 0, err
		}
	}
	switch b.end {
	case "close":
		return 0, nil
	case "halfclose":
		c.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// sum drains rec and adds up every series.
func sum(rec *record.Recorder) record.Snapshot {
	var tot record.Snapshot
	rec.Drain(func(_ record.SeriesKey, d record.Snapshot) { add(&tot, d) })
	return tot
}

func add(tot *record.Snapshot, d record.Snapshot) {
	tot.Requests += d.Requests
	tot.Faults += d.Faults
	tot.Errors += d.Errors
	tot.Slow += d.Slow
	tot.Latency.Merge(&d.Latency)
}

// sumUntil drains rec until it has counted n requests in all (a hang-up
// is processed after the client left), and returns the total.
func sumUntil(t *testing.T, rec *record.Recorder, n uint64) record.Snapshot {
	t.Helper()
	var tot record.Snapshot
	waitFor(t, fmt.Sprintf("%d recorded requests", n), func() bool {
		add(&tot, sum(rec))
		return tot.Requests >= n
	})
	return tot
}

// TestBrokenRequestsAreTheClientsError sends every kind of broken request,
// hundreds of each, to a healthy target through both paths: the client is
// answered 400/408/431 (when it still listens), and the recorder counts no
// fault and no slow request. Then a real fault on the same target is
// counted.
func TestBrokenRequestsAreTheClientsError(t *testing.T) {
	be := echoBackend(t)
	for _, netHTTP := range []bool{false, true} {
		t.Run(fmt.Sprintf("NetHTTPOnly=%v", netHTTP), func(t *testing.T) {
			// A threshold well above what a loaded test machine adds, below
			// the slow client's pause.
			rec := record.New(record.Options{DefaultThreshold: 900 * time.Millisecond})
			p := oneTargetProxy(t, be.Listener.Addr().String(), ProxyOptions{Recorder: rec, NetHTTPOnly: netHTTP,
				Limits: Limits{BodyTimeout: bodyTimeout}})
			addr := strings.TrimPrefix(p.RegionalURL(), "http://")
			for _, b := range brokenRequests() {
				t.Run(b.name, func(t *testing.T) {
					var wg sync.WaitGroup
					errs := make(chan string, b.reps)
					sem := make(chan struct{}, 16)
					for range b.reps {
						wg.Add(1)
						sem <- struct{}{}
						go func() {
							defer func() { <-sem; wg.Done() }()
							got, err := b.send(addr)
							if b.want != 0 && (err != nil || got != b.want) {
								errs <- fmt.Sprintf("status %d (%v), want %d", got, err, b.want)
							}
						}()
					}
					wg.Wait()
					close(errs)
					for e := range errs {
						t.Fatal(e)
					}
					want := uint64(b.reps)
					if b.rejected {
						want = 0
					}
					// A good request behind them, so that a drain with
					// nothing from the broken ones still counts one.
					if r := get(t, newClient(t), p.RegionalURL()+"/pay"); r.status != http.StatusOK {
						t.Fatalf("good request: %d", r.status)
					}
					d := sumUntil(t, rec, want+1)
					switch {
					case d.Requests != want+1 || d.Faults != 0:
						t.Errorf("%d broken requests: recorded %d requests (want %d), %d faults", b.reps, d.Requests, want+1, d.Faults)
					case b.answered && d.Errors != 0:
						// The target answered: its outcome, as it was. (Its
						// latency is the target's own, slow or not: the
						// client leaving adds nothing to it.)
						t.Errorf("%d answered requests recorded %d errors", b.reps, d.Errors)
					case !b.answered && (d.Errors != want || d.Slow > d.Requests-d.Errors):
						// Client errors are recorded at no latency: never slow.
						t.Errorf("%d broken requests recorded %d errors (want %d), %d slow", b.reps, d.Errors, want, d.Slow)
					}
				})
			}
			// A client trickling a valid body slowly makes the request take
			// longer, not the target: not slow.
			t.Run("slow but complete body", func(t *testing.T) {
				b := brokenRequest{parts: []string{"POST /pay HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nabc", "def"}, pause: 1200 * time.Millisecond, end: "read", want: 200}
				for range 2 {
					if got, err := b.send(addr); err != nil || got != 200 {
						t.Fatalf("status %d, %v", got, err)
					}
				}
				if d := sum(rec); d.Requests != 2 || d.Faults != 0 || d.Slow != 0 {
					t.Errorf("recorded %+v, want 2 requests, none slow", d)
				}
			})
			// What the target does still counts.
			t.Run("real fault", func(t *testing.T) {
				c := newClient(t)
				for range 10 {
					get(t, c, p.RegionalURL()+"/status/500")
				}
				if d := sum(rec); d.Faults != 10 {
					t.Errorf("10 answers 500 recorded %d faults", d.Faults)
				}
			})
		})
	}
}

// TestLimits: the head limit and the header and idle timeouts hold on both
// paths.
func TestLimits(t *testing.T) {
	be := echoBackend(t)
	const limit = 16 << 10
	for _, netHTTP := range []bool{false, true} {
		t.Run(fmt.Sprintf("NetHTTPOnly=%v", netHTTP), func(t *testing.T) {
			p := oneTargetProxy(t, be.Listener.Addr().String(), ProxyOptions{NetHTTPOnly: netHTTP,
				Limits: Limits{MaxHeaderBytes: limit, HeaderTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}})
			addr := strings.TrimPrefix(p.RegionalURL(), "http://")
			head := func(n int) string {
				h := "GET /a HTTP/1.1\r\nHost: h\r\nX-Pad: "
				return h + strings.Repeat("p", n-len(h)-4) + "\r\n\r\n"
			}
			for _, c := range []struct {
				size, want int
			}{{limit - 512, 200}, {limit + 512, 431}, {4 << 10, 200}, {DefaultMaxHeaderBytes, 431}} {
				b := brokenRequest{parts: []string{head(c.size)}, end: "read"}
				if got, err := b.send(addr); got != c.want {
					t.Errorf("head of %d bytes: status %d (%v), want %d", c.size, got, err, c.want)
				}
			}
			// A head that stalls, and a connection left idle, are closed.
			for _, raw := range []string{"GET /a HTTP/1.1\r\nHost: h\r\n", "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"} {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, raw)
				rest, err := io.ReadAll(c)
				if err != nil {
					t.Errorf("%q: connection not closed by the front door: %v", raw, err)
				}
				if strings.HasSuffix(raw, "\r\n\r\n") && !strings.HasPrefix(string(rest), "HTTP/1.1 200") {
					t.Errorf("%q: got %q", raw, rest)
				}
			}
		})
	}
}

// TestZonalEndpointsRecordOnlyWhenAsked: where the caller picks the zone
// (a zonal endpoint) nothing is recorded unless RecordZonal; the regional
// endpoint always records.
func TestZonalEndpointsRecordOnlyWhenAsked(t *testing.T) {
	be := echoBackend(t)
	for _, netHTTP := range []bool{false, true} {
		for _, zonal := range []bool{false, true} {
			rec := record.New(record.Options{})
			p := oneTargetProxy(t, be.Listener.Addr().String(), ProxyOptions{Recorder: rec, NetHTTPOnly: netHTTP, RecordZonal: zonal})
			c := newClient(t)
			for range 3 {
				get(t, c, p.ZonalURL("az1")+"/status/500")
			}
			get(t, c, p.RegionalURL()+"/status/500")
			want := uint64(1)
			if zonal {
				want = 4
			}
			if d := sum(rec); d.Requests != want || d.Faults != want {
				t.Errorf("NetHTTPOnly=%v RecordZonal=%v: recorded %+v, want %d requests", netHTTP, zonal, d, want)
			}
		}
	}
}

// TestMadeUpOperationsCannotCrowdOutConfiguredOnes: a caller who fills a
// target's operation slots with made-up paths does not push a configured
// operation into "other", where its own slow threshold would not apply.
func TestMadeUpOperationsCannotCrowdOutConfiguredOnes(t *testing.T) {
	be := echoBackend(t)
	for _, netHTTP := range []bool{false, true} {
		rec := record.New(record.Options{Thresholds: map[string]time.Duration{"search": 5 * time.Second}})
		p := oneTargetProxy(t, be.Listener.Addr().String(), ProxyOptions{Recorder: rec, NetHTTPOnly: netHTTP})
		c := newClient(t)
		for i := range maxOpsPerTarget + 10 {
			get(t, c, fmt.Sprintf("%s/made-up-%d", p.RegionalURL(), i))
		}
		get(t, c, p.RegionalURL()+"/search?q=x")
		ops := map[string]uint64{}
		rec.Drain(func(k record.SeriesKey, d record.Snapshot) { ops[k.Operation] += d.Requests })
		if ops["search"] != 1 || ops[otherOp] != 10 || len(ops) != maxOpsPerTarget+2 {
			t.Errorf("NetHTTPOnly=%v: search %d, other %d, %d series", netHTTP, ops["search"], ops[otherOp], len(ops))
		}
	}
}
