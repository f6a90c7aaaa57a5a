package frontdoor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// wireBackend is a raw TCP backend that keeps the exact bytes it receives
// on each connection and answers each request it can parse with 200 and
// "METHOD TARGET BODY".
type wireBackend struct {
	ln       net.Listener
	wg       sync.WaitGroup
	accepted chan struct{} // closed when the accept loop has ended

	mu    sync.Mutex
	conns []*bytes.Buffer
}

func newWireBackend(t *testing.T) *wireBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &wireBackend{ln: ln, accepted: make(chan struct{})}
	go func() {
		defer close(b.accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := &bytes.Buffer{}
			b.mu.Lock()
			b.conns = append(b.conns, buf)
			b.mu.Unlock()
			b.wg.Add(1)
			go b.serve(c, buf)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return b
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (b *wireBackend) serve(c net.Conn, buf *bytes.Buffer) {
	defer b.wg.Done()
	defer c.Close()
	br := bufio.NewReader(io.TeeReader(c, lockedWriter{&b.mu, buf}))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			io.Copy(io.Discard, br) // keep recording until the proxy closes
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			io.Copy(io.Discard, br)
			return
		}
		msg := fmt.Sprintf("%s %s %s", req.Method, req.RequestURI, body)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
	}
}

// received waits for every backend connection to end and returns what each
// one received.
func (b *wireBackend) received(t *testing.T) [][]byte {
	t.Helper()
	// No connection may be added while waiting (a WaitGroup's Add racing its
	// Wait, which the race detector caught): stop accepting first.
	b.ln.Close()
	<-b.accepted
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("backend connections still open 10 s after the proxy closed")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out [][]byte
	for _, c := range b.conns {
		out = append(out, bytes.Clone(c.Bytes()))
	}
	b.conns = nil
	return out
}

// strictRequest is one request as framed by the strict parser below.
type strictRequest struct {
	Line string // request line
	Body string
}

var errTruncated = errors.New("truncated")

// parseStrict splits what a backend received on one connection into
// requests, by RFC 9112 with none of its leniencies: CRLF line endings
// only, no obs-fold, header names as tokens, no control characters in
// values, exactly one framing (Content-Length, at most once, digits only;
// or Transfer-Encoding exactly "chunked"), chunk sizes as plain hex. A
// message cut off at the end is errTruncated; anything else wrong is an
// error naming it.
func parseStrict(b []byte) ([]strictRequest, error) {
	var out []strictRequest
	for len(b) > 0 {
		end := bytes.Index(b, []byte("\r\n\r\n"))
		if end < 0 {
			return out, errTruncated
		}
		head := string(b[:end])
		b = b[end+4:]
		lines := strings.Split(head, "\r\n")
		var req strictRequest
		req.Line = lines[0]
		for _, l := range lines {
			if strings.ContainsAny(l, "\r\n\x00") {
				return out, fmt.Errorf("bare CR, LF or NUL in head %q", head)
			}
		}
		if f := strings.Split(req.Line, " "); len(f) != 3 || f[2] != "HTTP/1.1" || f[0] == "" || f[1] == "" {
			return out, fmt.Errorf("request line %q", req.Line)
		}
		cl, te := -1, false
		for _, l := range lines[1:] {
			if l == "" || l[0] == ' ' || l[0] == '\t' {
				return out, fmt.Errorf("obs-fold or empty line in head: %q", l)
			}
			name, value, ok := strings.Cut(l, ":")
			if !ok || name == "" {
				return out, fmt.Errorf("header line %q", l)
			}
			for _, c := range []byte(name) {
				if !isTchar[c] {
					return out, fmt.Errorf("header name %q", name)
				}
			}
			for _, c := range []byte(value) {
				if c < ' ' && c != '\t' || c == 0x7f {
					return out, fmt.Errorf("control character in header %q", l)
				}
			}
			value = strings.Trim(value, " \t")
			switch strings.ToLower(name) {
			case "content-length":
				if cl >= 0 {
					return out, fmt.Errorf("two Content-Length fields")
				}
				n, err := strconv.Atoi(value)
				if err != nil || n < 0 || strings.Trim(value, "0123456789") != "" {
					return out, fmt.Errorf("Content-Length %q", value)
				}
				cl = n
			case "transfer-encoding":
				if te || value != "chunked" {
					return out, fmt.Errorf("Transfer-Encoding %q", value)
				}
				te = true
			}
		}
		if cl >= 0 && te {
			return out, fmt.Errorf("both Content-Length and Transfer-Encoding")
		}
		switch {
		case te:
			var body []byte
			for {
				i := bytes.Index(b, []byte("\r\n"))
				if i < 0 {
					return out, errTruncated
				}
				size := string(b[:i])
				if ext := strings.IndexByte(size, ';'); ext >= 0 {
					size = size[:ext]
				}
				n, err := strconv.ParseUint(size, 16, 31)
				if err != nil || strings.Trim(size, "0123456789abcdefABCDEF") != "" {
					return out, fmt.Errorf("chunk size %q", b[:i])
				}
				b = b[i+2:]
				if n == 0 {
					i := bytes.Index(b, []byte("\r\n\r\n"))
					if bytes.HasPrefix(b, []byte("\r\n")) {
						i = -2
					} else if i < 0 {
						return out, errTruncated
					}
					b = b[i+4:]
					break
				}
				if uint64(len(b)) < n+2 {
					return out, errTruncated
				}
				if string(b[n:n+2]) != "\r\n" {
					return out, fmt.Errorf("chunk of %d not followed by CRLF", n)
				}
				body = append(body, b[:n]...)
				b = b[n+2:]
			}
			req.Body = string(body)
		case cl > 0:
			if len(b) < cl {
				return out, errTruncated
			}
			req.Body = string(b[:cl])
			b = b[cl:]
		}
		out = append(out, req)
	}
	return out, nil
}

// smuggleCorpus is malformed and ambiguous requests. "/smuggle" marks a
// request hidden where a correct parser sees none: it must never reach the
// backend.
var smuggleCorpus = []struct{ name, raw string }{
	{"CL then TE", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggle HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"TE then CL", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /smuggle HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"CL+TE, chunked body smuggling a request", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2b\r\nGET /smuggle HTTP/1.1\r\nHost: h\r\nX: GET /x \r\n0\r\n\r\n"},
	{"duplicate Content-Length", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 37\r\n\r\nabcGET /smuggle HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"duplicate equal Content-Length", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
	{"Content-Length list", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc"},
	{"Content-Length with junk", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3x\r\n\r\nabc"},
	{"Content-Length with sign", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc"},
	{"Content-Length hex", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\nabc"},
	{"Content-Length negative", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\nGET /smuggle HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"Content-Length huge", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\nabc"},
	{"TE chunked, identity", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\nGET /smuggle HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"TE identity", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc"},
	{"TE xchunked", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
	{"TE twice", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	{"TE with space before colon", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc"},
	{"TE in HTTP/1.0", "POST /a HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggle HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"TE obs-folded", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\nabc"},
	{"obs-fold", "GET /a HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  2\r\n\r\n"},
	{"bare LF head", "GET /a HTTP/1.1\nHost: h\nX-A: 1\n\nGET /b HTTP/1.1\nHost: h\n\n"},
	{"bare CR in value", "GET /a HTTP/1.1\r\nHost: h\r\nX-A: 1\rGET /smuggle HTTP/1.1\r\n\r\n"},
	{"NUL in value", "GET /a HTTP/1.1\r\nHost: h\r\nX-A: 1\x002\r\n\r\n"},
	{"space in header name", "GET /a HTTP/1.1\r\nHost: h\r\nX A: 1\r\n\r\n"},
	{"no Host", "GET /a HTTP/1.1\r\n\r\n"},
	{"two Hosts", "GET /a HTTP/1.1\r\nHost: h\r\nHost: evil\r\n\r\n"},
	{"invalid chunk size", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
	{"chunk size overflow", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nabc\r\n0\r\n\r\n"},
	{"chunk size with sign", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n"},
	{"chunk longer than its size", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcGET /smuggle HTTP/1.1\r\n\r\n0\r\n\r\n"},
	{"chunk lines with bare LF", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n"},
	{"chunk extension", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;name=value\r\nabc\r\n0\r\n\r\n"},
	{"chunk extension abuse", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;" + strings.Repeat("x", 8000) + "\r\nabc\r\n0\r\n\r\n"},
	{"chunked with trailer", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"},
	{"chunked then pipelined", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /two HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"body shorter than Content-Length", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 30\r\n\r\nabc"},
	{"oversized head", "GET /a HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("b", 70<<10) + "\r\n\r\n"},
	{"many headers", "GET /a HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X-Many: 0123456789012345678901234567890123456789\r\n", 2000) + "\r\n"},
	{"pipelined", "GET /one HTTP/1.1\r\nHost: h\r\n\r\nPOST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET /three HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"pipelined after close", "GET /one HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /smuggle HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"request line with extra space", "GET  /a HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"absolute-form target", "GET http://evil.example/a HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"Expect with body", "POST /a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"},
	{"GET with body", "GET /a HTTP/1.1\r\nHost: h\r\nContent-Length: 34\r\n\r\nGET /smuggle HTTP/1.1\r\nHost: h\r\n\r\n"},
}

// wireResult is what one corpus entry did through one path.
type wireResult struct {
	statuses []int           // what the client got, in order
	requests []strictRequest // what the backend got, strictly framed
}

// playWire sends raw on a fresh proxy of the given path, half-closes, reads
// every answer, closes the proxy and parses what the backend received.
func playWire(t *testing.T, raw string, netHTTP bool) wireResult {
	t.Helper()
	be := newWireBackend(t)
	tb := NewTable([]string{"az1"}, DefaultHealthPolicy)
	if err := tb.AddTarget(Target{ID: "az1-1", Zone: "az1", Addr: be.ln.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	p, err := StartProxy(context.Background(), tb, ProxyOptions{Log: quiet, NetHTTPOnly: netHTTP})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", strings.TrimPrefix(p.RegionalURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, raw)
	c.(*net.TCPConn).CloseWrite()
	var res wireResult
	br := bufio.NewReader(c)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		res.statuses = append(res.statuses, resp.StatusCode)
	}
	c.Close()
	p.Close()
	rejected := slices.ContainsFunc(res.statuses, func(s int) bool { return s >= 400 })
	for i, b := range be.received(t) {
		reqs, err := parseStrict(b)
		switch {
		case errors.Is(err, errTruncated) && rejected:
			// A request the front door refused part way (its body was
			// malformed or short): the backend got an incomplete message
			// and a closed connection, never a request of its own.
		case err != nil:
			t.Errorf("backend connection %d: %v; it received:\n%q", i, err, b)
		}
		res.requests = append(res.requests, reqs...)
	}
	return res
}

// TestFrontDoorFramesEveryRequest sends the smuggling corpus through both
// paths, with a raw backend recording the bytes it receives: what it
// receives is only strictly framed requests, none hidden in another's
// bytes, and both paths answer the client and the backend alike.
func TestFrontDoorFramesEveryRequest(t *testing.T) {
	for _, c := range smuggleCorpus {
		t.Run(c.name, func(t *testing.T) {
			fast := playWire(t, c.raw, false)
			slow := playWire(t, c.raw, true)
			for _, r := range append(slices.Clone(fast.requests), slow.requests...) {
				if strings.Contains(r.Line, "smuggle") || strings.Contains(r.Line, "evil") {
					t.Errorf("the backend received a smuggled request: %q", r.Line)
				}
			}
			if !slices.Equal(fast.statuses, slow.statuses) {
				t.Errorf("client got %v on the fast path, %v on the net/http path", fast.statuses, slow.statuses)
			}
			if !slices.Equal(fast.requests, slow.requests) {
				t.Errorf("backend got\n%q on the fast path,\n%q on the net/http path", fast.requests, slow.requests)
			}
			if len(fast.statuses) == 0 {
				t.Errorf("no answer at all")
			}
			t.Logf("client: %v; backend: %q", fast.statuses, fast.requests)
		})
	}
}

// TestParseStrict: the checker above refuses what a lenient front door
// would pass on.
func TestParseStrict(t *testing.T) {
	for _, bad := range []string{
		"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
		"GET /a HTTP/1.1\nHost: h\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\nX: 1\r\n 2\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
		"GET /a HTTP/1.0\r\nHost: h\r\n\r\n",
	} {
		if _, err := parseStrict([]byte(bad)); err == nil || errors.Is(err, errTruncated) {
			t.Errorf("parseStrict(%q) = %v, want a framing error", bad, err)
		}
	}
	got, err := parseStrict([]byte("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\n"))
	want := []strictRequest{{"POST /a HTTP/1.1", "abc"}, {"GET /b HTTP/1.1", "hi"}}
	if !slices.Equal(got, want) || !errors.Is(err, errTruncated) {
		t.Errorf("parseStrict = %q, %v; want %q, truncated", got, err, want)
	}
}
