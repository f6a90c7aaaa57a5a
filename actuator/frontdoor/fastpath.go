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
	"strconv"
	"sync"
	"time"

	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// The fast path serves plain HTTP/1.1 requests straight off the client's
// connection: it reads the request head from the connection's buffer,
// writes it (minus hop-by-hop and X-Forwarded headers, as the ReverseProxy
// path does) to a kept-alive connection to the chosen target, and copies the
// response head and body back, all on the connection's goroutine. net/http's
// server costs a goroutine, a read and a context per request to watch for
// the client going away, and a request and header maps to fill; on this
// path a request costs a read and a write on each side, a few hundred
// nanoseconds of parsing, and no allocation.
//
// Anything it does not take on — HTTP/1.0, chunked or large request bodies,
// Expect, protocol upgrades, Connection options other than close and
// keep-alive, unusual targets or header bytes, heads over 4 KiB — hands the
// connection, with what was read of it, to net/http's server and the
// ReverseProxy for the rest of its life. That path is the reference: the
// fast path answers what it takes on as that path would.

// Its limits (Limits) are the net/http path's: a head over MaxHeaderBytes, a
// head not finished within HeaderTimeout, a body not received within
// BodyTimeout, a connection idle for IdleTimeout. A request whose body
// fails (short, too slow, the client gone) is answered 400 or 408 and
// recorded as the client's error, never as the target's fault.

const clientBufSize = 4 << 10

var (
	errHeadTooLarge = errors.New("frontdoor: head too large")
	errMalformed    = errors.New("frontdoor: malformed message")
)

var clientBufs = sync.Pool{New: func() any {
	return &clientBuf{br: bufio.NewReaderSize(nil, clientBufSize), bw: bufio.NewWriterSize(nil, clientBufSize)}
}}

type clientBuf struct {
	br *bufio.Reader
	bw *bufio.Writer
}

// fastEndpoint is one endpoint (regional or zonal) on the fast path.
type fastEndpoint struct {
	p       *Proxy
	pick    func() *Target
	record  bool // record this endpoint's requests (with the proxy's Recorder)
	ln      net.Listener
	handoff *handoffListener

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (e *fastEndpoint) track(c net.Conn, add bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if add {
		if e.closed {
			return false
		}
		e.conns[c] = struct{}{}
	} else {
		delete(e.conns, c)
	}
	return true
}

// close stops accepting and cuts every connection still on the fast path.
func (e *fastEndpoint) close() {
	e.mu.Lock()
	e.closed = true
	conns := e.conns
	e.conns = nil
	e.mu.Unlock()
	e.ln.Close()
	e.handoff.Close()
	for c := range conns {
		c.Close()
	}
}

func (e *fastEndpoint) serve() {
	var delay time.Duration
	for {
		c, err := e.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, as http.Server does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			e.p.log.Error("frontdoor: accept", "addr", e.ln.Addr().String(), "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if !e.track(c, true) {
			c.Close()
			continue
		}
		go e.serveConn(c)
	}
}

func (e *fastEndpoint) serveConn(c net.Conn) {
	buf := clientBufs.Get().(*clientBuf)
	br, bw := buf.br, buf.bw
	br.Reset(c)
	bw.Reset(c)
	handedOff := false
	defer func() {
		e.track(c, false)
		if handedOff {
			return // br now belongs to the handed-off connection
		}
		c.Close()
		br.Reset(nil)
		bw.Reset(nil)
		clientBufs.Put(buf)
	}()
	lim := &e.p.limits
	refresh := lim.deadlineRefresh()
	// idleSet is the monoNow at which the idle deadline was last set; -1:
	// another deadline replaced it. The monotonic clock alone is read per
	// request, the wall clock only when the deadline is pushed back.
	idleSet := time.Duration(-1)
	for {
		if now := monoNow(); idleSet < 0 || now-idleSet > refresh {
			c.SetReadDeadline(time.Now().Add(lim.IdleTimeout))
			idleSet = now
		}
		head, err := peekHead(br, func() {
			c.SetReadDeadline(time.Now().Add(lim.HeaderTimeout))
			idleSet = -1
		})
		if err != nil {
			if errors.Is(err, errHeadTooLarge) || errors.Is(err, errMalformed) {
				handedOff = e.handOff(c, br)
			}
			return
		}
		var req fastReq
		if len(head) > lim.MaxHeaderBytes || !req.parse(head) {
			handedOff = e.handOff(c, br)
			return
		}
		br.Discard(len(head))
		if req.contentLength > int64(br.Buffered()) {
			// The body is still on its way: bound how long it may take.
			c.SetReadDeadline(time.Now().Add(lim.BodyTimeout))
			idleSet = -1
		}
		if !e.forward(br, bw, &req) {
			return
		}
	}
}

// handOff gives the connection, with what is buffered of it, to the
// endpoint's net/http server.
func (e *fastEndpoint) handOff(c net.Conn, br *bufio.Reader) bool {
	e.track(c, false)
	return e.handoff.give(&bufferedConn{Conn: c, br: br})
}

// peekHead returns the message head (through its empty line) from the
// reader's buffer, reading more as needed, without consuming it. started is
// called once when a head turns out not to have arrived in one read.
func peekHead(br *bufio.Reader, started func()) ([]byte, error) {
	if _, err := br.Peek(1); err != nil {
		return nil, err
	}
	scanned := 0
	for first := true; ; first = false {
		b, _ := br.Peek(br.Buffered())
		if i := headEnd(b, scanned); i > 0 {
			return b[:i], nil
		}
		if len(b) >= br.Size() {
			return nil, errHeadTooLarge
		}
		scanned = max(0, len(b)-3)
		if first && started != nil {
			started()
		}
		if _, err := br.Peek(len(b) + 1); err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, errHeadTooLarge
			}
			return nil, err
		}
	}
}

// headEnd is the length of the head in b (through "\r\n\r\n" or a bare
// "\n\n"), or 0 when it is not all there. Search starts at from.
func headEnd(b []byte, from int) int {
	for i := from; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
}

// fastReq is a request head the fast path takes on.
type fastReq struct {
	head          []byte
	method        []byte
	target        []byte
	contentLength int64
	closeConn     bool
	needLength    bool // POST, PUT or PATCH without Content-Length: net/http sends "Content-Length: 0"
	isHead        bool // req.head may be overwritten once the body is read: keep what is needed after
}

type headerKind uint8

const (
	hdrForward headerKind = iota
	hdrDrop               // hop-by-hop, or X-Forwarded-*/Forwarded (the Rewrite hook drops them)
	hdrHost
	hdrContentLength
	hdrConnection
	hdrSlow // only the net/http path handles it
)

// requestHeaderKind classifies a request header name (validated as a token).
func requestHeaderKind(name []byte) headerKind {
	switch len(name) {
	case 2:
		if bytes.EqualFold(name, []byte("te")) {
			return hdrSlow
		}
	case 4:
		if bytes.EqualFold(name, []byte("host")) {
			return hdrHost
		}
	case 6:
		if bytes.EqualFold(name, []byte("expect")) {
			return hdrSlow
		}
	case 7:
		if bytes.EqualFold(name, []byte("upgrade")) || bytes.EqualFold(name, []byte("trailer")) {
			return hdrSlow
		}
	case 9:
		if bytes.EqualFold(name, []byte("forwarded")) {
			return hdrDrop
		}
	case 10:
		if bytes.EqualFold(name, []byte("connection")) {
			return hdrConnection
		}
		if bytes.EqualFold(name, []byte("keep-alive")) {
			return hdrDrop
		}
	case 14:
		if bytes.EqualFold(name, []byte("content-length")) {
			return hdrContentLength
		}
	case 15:
		if bytes.EqualFold(name, []byte("x-forwarded-for")) {
			return hdrDrop
		}
	case 16:
		if bytes.EqualFold(name, []byte("proxy-connection")) || bytes.EqualFold(name, []byte("x-forwarded-host")) {
			return hdrDrop
		}
	case 17:
		if bytes.EqualFold(name, []byte("transfer-encoding")) || bytes.EqualFold(name, []byte("x-forwarded-proto")) {
			if name[0] == 't' || name[0] == 'T' {
				return hdrSlow
			}
			return hdrDrop
		}
	case 18:
		if bytes.EqualFold(name, []byte("proxy-authenticate")) {
			return hdrDrop
		}
	case 19:
		if bytes.EqualFold(name, []byte("proxy-authorization")) {
			return hdrDrop
		}
	}
	return hdrForward
}

// line returns the line of b starting at i without its line ending, and the
// index after it; ok is false for a bare LF ending.
func line(b []byte, i int) (ln []byte, next int, ok bool) {
	j := bytes.IndexByte(b[i:], '\n')
	if j < 0 {
		return nil, len(b), false
	}
	end := i + j
	if end == i || b[end-1] != '\r' {
		return b[i:end], end + 1, false
	}
	return b[i : end-1], end + 1, true
}

// header splits a header line into name and value (OWS trimmed) and
// validates both as net/http would; ok is false for anything else,
// including an obs-fold.
func header(l []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(l, ':')
	if colon <= 0 {
		return nil, nil, false
	}
	name = l[:colon]
	for _, c := range name {
		if !isTchar[c] {
			return nil, nil, false
		}
	}
	value = l[colon+1:]
	for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') {
		value = value[1:]
	}
	for len(value) > 0 && (value[len(value)-1] == ' ' || value[len(value)-1] == '\t') {
		value = value[:len(value)-1]
	}
	for _, c := range value {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return nil, nil, false
		}
	}
	return name, value, true
}

// parse reads a request head; false means the net/http path must serve it.
func (r *fastReq) parse(head []byte) bool {
	r.head = head
	r.contentLength = 0
	reqLine, i, ok := line(head, 0)
	if !ok {
		return false
	}
	sp1 := bytes.IndexByte(reqLine, ' ')
	if sp1 <= 0 {
		return false
	}
	rest := reqLine[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 || string(rest[sp2+1:]) != "HTTP/1.1" {
		return false
	}
	r.method, r.target = reqLine[:sp1], rest[:sp2]
	r.isHead = string(r.method) == "HEAD"
	for _, c := range r.method {
		if !isTchar[c] {
			return false
		}
	}
	if string(r.method) == "CONNECT" || !validTarget(r.target) {
		return false
	}
	hosts, lengths := 0, 0
	for {
		l, next, ok := line(head, i)
		if !ok {
			return false
		}
		i = next
		if len(l) == 0 {
			break
		}
		name, value, ok := header(l)
		if !ok {
			return false
		}
		switch requestHeaderKind(name) {
		case hdrSlow:
			return false
		case hdrHost:
			hosts++
			if !validHost(value) {
				return false
			}
		case hdrContentLength:
			lengths++
			n, ok := parseLength(value)
			if !ok || n > maxFastBody {
				return false
			}
			r.contentLength = n
		case hdrConnection:
			if !r.connectionOptions(value) {
				return false
			}
		}
	}
	switch string(r.method) {
	case "POST", "PUT", "PATCH":
		r.needLength = lengths == 0
	}
	return hosts == 1 && lengths <= 1 && i == len(head)
}

// connectionOptions accepts only close and keep-alive: other options name
// hop-by-hop headers, which the net/http path removes.
func (r *fastReq) connectionOptions(v []byte) bool {
	for len(v) > 0 {
		tok := v
		if c := bytes.IndexByte(v, ','); c >= 0 {
			tok, v = v[:c], v[c+1:]
		} else {
			v = nil
		}
		tok = bytes.Trim(tok, " \t")
		switch {
		case len(tok) == 0, bytes.EqualFold(tok, []byte("keep-alive")):
		case bytes.EqualFold(tok, []byte("close")):
			r.closeConn = true
		default:
			return false
		}
	}
	return true
}

func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

var isTchar, isTargetChar, isHostChar [256]bool

func init() {
	for c := 0; c < 256; c++ {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		isTchar[c] = alnum || bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), byte(c)) >= 0
		isTargetChar[c] = alnum || bytes.IndexByte([]byte("-._~!$&'()*+,;=:@/?%"), byte(c)) >= 0
		isHostChar[c] = alnum || bytes.IndexByte([]byte("-._:[]"), byte(c)) >= 0
	}
}

// validTarget accepts an origin-form target of plain URI characters with
// well-formed percent escapes, which net/http would forward unchanged.
func validTarget(t []byte) bool {
	if len(t) == 0 || t[0] != '/' {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !isTargetChar[c] {
			return false
		}
		if c == '%' && (i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2])) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func validHost(h []byte) bool {
	for _, c := range h {
		if !isHostChar[c] {
			return false
		}
	}
	return true
}

// operation is the target path's first segment, as operationOf.
func (r *fastReq) operation() []byte {
	p := r.target[1:]
	for i, c := range p {
		if c == '/' || c == '?' {
			return p[:i]
		}
	}
	return p
}

// epoch anchors monoNow.
var epoch = time.Now()

// monoNow is the monotonic clock alone: time.Now also reads the wall clock,
// a second clock read per call that latency measurement does not need.
func monoNow() time.Duration { return time.Since(epoch) }

// forward proxies one request whose head was consumed from br, and reports
// whether the client connection can take another.
func (e *fastEndpoint) forward(br *bufio.Reader, bw *bufio.Writer, req *fastReq) bool {
	t := e.pick()
	if t == nil {
		if discard(br, req.contentLength) != nil {
			return false
		}
		bw.WriteString("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 18\r\n")
		return finishHead(bw, req.closeConn, "no healthy target\n")
	}
	rt := e.p.routeFor(t)
	start := monoNow()
	var series *record.Series
	if rt.ops != nil && e.record {
		series = rt.ops.seriesBytes(req.operation())
	}
	bc, resp, wait, err := rt.exchange(br, req, start)
	if err != nil {
		if errors.Is(err, errClientBody) {
			// The client's body was short, too slow, or the client left:
			// its error. No answer came, so there is no response time to
			// hold against the target either.
			if series != nil {
				series.Observe(observation.Error, 0)
			}
			st := clientStatusOf(err)
			bw.WriteString("HTTP/1.1 ")
			bw.WriteString(strconv.Itoa(st.code))
			bw.WriteByte(' ')
			bw.WriteString(http.StatusText(st.code))
			bw.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ")
			bw.WriteString(strconv.Itoa(len(st.text) + 1))
			bw.WriteString("\r\n")
			finishHead(bw, true, st.text+"\n")
			return false
		}
		if series != nil {
			series.Observe(observation.Fault, monoNow()-start)
		}
		if isTimeout(err) {
			bw.WriteString("HTTP/1.1 504 Gateway Timeout\r\nX-Grayzone-Zone: ")
		} else {
			bw.WriteString("HTTP/1.1 502 Bad Gateway\r\nX-Grayzone-Zone: ")
		}
		bw.WriteString(t.Zone)
		bw.WriteString("\r\nX-Grayzone-Instance: ")
		bw.WriteString(t.ID)
		bw.WriteString("\r\nContent-Length: 0\r\n")
		// What was read of a request body is unknown: end the connection.
		return finishHead(bw, req.closeConn || req.contentLength > 0, "")
	}
	if series != nil {
		series.Observe(observation.FromStatus(resp.status), max(0, monoNow()-start-wait))
	}
	keepClient, keepBackend := relay(bw, bc.br, req, &resp)
	if keepBackend {
		rt.pool.put(bc, start)
	} else {
		bc.Close()
	}
	return keepClient && !req.closeConn
}

// finishHead ends a response of the front door's own and reports whether
// the client connection can take another request.
func finishHead(bw *bufio.Writer, closeConn bool, body string) bool {
	if closeConn {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	bw.WriteString(body)
	return bw.Flush() == nil && !closeConn
}

func discard(br *bufio.Reader, n int64) error {
	for n > 0 {
		k, err := br.Discard(int(min(n, int64(br.Size()))))
		n -= int64(k)
		if err != nil {
			return err
		}
	}
	return nil
}

// respHead is a backend's response head, still in the backend reader's buffer.
type respHead struct {
	head          []byte
	status        int
	contentLength int64 // -1: none
	chunked       bool
	closeDelim    bool // body runs to the end of the connection
	noBody        bool
	keepBackend   bool
}

// exchange sends the request to the route's target and reads the response
// head (after any 1xx, which are skipped as the ReverseProxy path does).
// A kept-alive connection that fails before any response byte is retried
// once on a new connection when the request is idempotent and had no body.
//
// wait is the time spent waiting for the client's body, which is not the
// target's; an error wrapping errClientBody is the client's.
//
// now is monoNow when the request started: one clock reading serves the
// pool, the response deadline and the latency measurement.
func (rt *route) exchange(cbr *bufio.Reader, req *fastReq, now time.Duration) (_ *h1Conn, _ respHead, wait time.Duration, _ error) {
	for attempt := 0; ; attempt++ {
		bc, reused, err := rt.pool.get(context.Background(), now)
		if err != nil {
			return nil, respHead{}, wait, err
		}
		var w time.Duration
		w, err = writeFastRequest(bc.bw, cbr, req)
		wait += w
		if err == nil {
			bc.awaitHead(now, rt.pool.responseTimeout)
			_, err = bc.br.Peek(1)
		}
		if err != nil {
			bc.Close()
			if errors.Is(err, errClientBody) {
				return nil, respHead{}, wait, err
			}
			if reused && attempt == 0 && req.contentLength == 0 && idempotent(string(req.method)) && !isTimeout(err) {
				continue
			}
			return nil, respHead{}, wait, err
		}
		for {
			resp, err := readResponseHead(bc.br, req)
			if err != nil {
				bc.Close()
				return nil, respHead{}, wait, err
			}
			if resp.status >= 100 && resp.status < 200 {
				if resp.status == 101 {
					bc.Close()
					return nil, respHead{}, wait, errors.New("frontdoor: 101 to a request that asked for no upgrade")
				}
				bc.br.Discard(len(resp.head))
				continue
			}
			if resp.bodyAhead(bc.br.Buffered()) {
				bc.liftHeadDeadline() // the body may take as long as it takes
			}
			return bc, resp, wait, nil
		}
	}
}

// writeFastRequest writes the request head, without dropped headers, and its
// body to the backend, and flushes. wait is the time spent waiting for the
// client's body; a failure to read it wraps errClientBody.
func writeFastRequest(w *bufio.Writer, cbr *bufio.Reader, req *fastReq) (wait time.Duration, _ error) {
	reqLine, i, _ := line(req.head, 0)
	w.Write(reqLine)
	w.WriteString("\r\n")
	for {
		l, next, _ := line(req.head, i)
		i = next
		if len(l) == 0 {
			break
		}
		colon := bytes.IndexByte(l, ':')
		switch requestHeaderKind(l[:colon]) {
		case hdrDrop, hdrConnection:
			continue
		}
		w.Write(l)
		w.WriteString("\r\n")
	}
	if req.needLength {
		w.WriteString("Content-Length: 0\r\n")
	}
	w.WriteString("\r\n")
	if req.contentLength > 0 {
		if err := copyN(w, cbr, req.contentLength, &wait); err != nil {
			var re readError
			if errors.As(err, &re) {
				// Reading the client's body failed: the client's error; a
				// write error is the backend's.
				return wait, fmt.Errorf("%w: %w", errClientBody, re.err)
			}
			return wait, err
		}
	}
	return wait, w.Flush()
}

// copyN copies n bytes from a buffered reader to a buffered writer without
// allocating. A read error is returned as errRead (the reader's side: the
// caller knows whose), a write error as is. With wait set, the time spent
// blocked on the reader is added to it, measured only when its bytes were
// not already buffered.
func copyN(w *bufio.Writer, r *bufio.Reader, n int64, wait *time.Duration) error {
	for n > 0 {
		if r.Buffered() == 0 {
			var start time.Duration
			if wait != nil {
				start = monoNow()
			}
			_, err := r.Peek(1)
			if wait != nil {
				*wait += monoNow() - start
			}
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return readError{err}
			}
		}
		b, _ := r.Peek(int(min(int64(r.Buffered()), n)))
		if _, err := w.Write(b); err != nil {
			return err
		}
		r.Discard(len(b))
		n -= int64(len(b))
	}
	return nil
}

// readError marks a failure on copyN's reading side.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }
func (e readError) Unwrap() error { return e.err }

type respKind uint8

const (
	respForward respKind = iota
	respDrop
	respContentLength
	respTransferEncoding
	respConnection
)

func responseHeaderKind(name []byte) respKind {
	switch len(name) {
	case 2:
		if bytes.EqualFold(name, []byte("te")) {
			return respDrop
		}
	case 7:
		if bytes.EqualFold(name, []byte("upgrade")) {
			return respDrop
		}
	case 10:
		if bytes.EqualFold(name, []byte("connection")) {
			return respConnection
		}
		if bytes.EqualFold(name, []byte("keep-alive")) {
			return respDrop
		}
	case 14:
		if bytes.EqualFold(name, []byte("content-length")) {
			return respContentLength
		}
	case 16:
		if bytes.EqualFold(name, []byte("proxy-connection")) {
			return respDrop
		}
	case 17:
		if bytes.EqualFold(name, []byte("transfer-encoding")) {
			return respTransferEncoding
		}
	case 18:
		if bytes.EqualFold(name, []byte("proxy-authenticate")) {
			return respDrop
		}
	case 19:
		if bytes.EqualFold(name, []byte("proxy-authorization")) {
			return respDrop
		}
	}
	return respForward
}

// readResponseHead parses the response head in br's buffer (not consuming it).
func readResponseHead(br *bufio.Reader, req *fastReq) (respHead, error) {
	head, err := peekHead(br, nil)
	if err != nil {
		return respHead{}, err
	}
	r := respHead{head: head, contentLength: -1, keepBackend: true}
	sl, i, ok := line(head, 0)
	// HTTP/1.x SP 3DIGIT [SP reason]
	if !ok || len(sl) < 12 || string(sl[:7]) != "HTTP/1." || sl[8] != ' ' || (len(sl) > 12 && sl[12] != ' ') {
		return r, errMalformed
	}
	for _, c := range sl[9:12] {
		if c < '0' || c > '9' {
			return r, errMalformed
		}
		r.status = r.status*10 + int(c-'0')
	}
	if sl[7] != '1' {
		r.keepBackend = false // HTTP/1.0: no keep-alive unless negotiated; do without
	}
	lengths := 0
	for {
		l, next, ok := line(head, i)
		if !ok {
			return r, errMalformed
		}
		i = next
		if len(l) == 0 {
			break
		}
		name, value, ok := header(l)
		if !ok {
			return r, errMalformed
		}
		switch responseHeaderKind(name) {
		case respContentLength:
			n, ok := parseLength(value)
			if !ok || (lengths > 0 && n != r.contentLength) {
				return r, errMalformed
			}
			lengths++
			r.contentLength = n
		case respTransferEncoding:
			// Chunked when it is the last coding; otherwise the body runs to
			// the end of the connection.
			last := value
			if c := bytes.LastIndexByte(value, ','); c >= 0 {
				last = bytes.Trim(value[c+1:], " \t")
			}
			if bytes.EqualFold(last, []byte("chunked")) {
				r.chunked = true
			} else {
				r.closeDelim = true
			}
		case respConnection:
			if bytes.Contains(bytes.ToLower(value), []byte("close")) {
				r.keepBackend = false
			}
		}
	}
	switch {
	case req.isHead || r.status == 204 || r.status == 304 || r.status < 200:
		r.noBody, r.chunked, r.closeDelim = true, false, false
	case r.chunked || r.closeDelim:
		r.contentLength = -1
		if lengths > 0 {
			r.keepBackend = false // both framings: trust neither connection again
		}
	case r.contentLength < 0:
		r.closeDelim = true
	}
	if r.closeDelim {
		r.keepBackend = false
	}
	return r, nil
}

// bodyAhead reports whether reading the body will need more than the
// buffered bytes (the head's included): then the response-head deadline
// must not be left on the connection.
func (r *respHead) bodyAhead(buffered int) bool {
	if r.noBody {
		return false
	}
	return r.chunked || r.closeDelim || r.contentLength > int64(buffered-len(r.head))
}

// relay writes the response head (without hop-by-hop headers) and body to
// the client and reports whether each connection can be reused.
func relay(bw *bufio.Writer, br *bufio.Reader, req *fastReq, r *respHead) (keepClient, keepBackend bool) {
	head := r.head
	sl, i, _ := line(head, 0)
	bw.WriteString("HTTP/1.1")
	bw.Write(sl[8:])
	bw.WriteString("\r\n")
	for {
		l, next, _ := line(head, i)
		i = next
		if len(l) == 0 {
			break
		}
		colon := bytes.IndexByte(l, ':')
		switch responseHeaderKind(l[:colon]) {
		case respDrop, respConnection:
			continue
		case respContentLength:
			if r.chunked || r.closeDelim {
				continue
			}
		}
		bw.Write(l)
		bw.WriteString("\r\n")
	}
	if r.closeDelim || req.closeConn {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	br.Discard(len(head))
	var err error
	switch {
	case r.noBody:
	case r.chunked:
		err = copyChunked(bw, br)
	case r.closeDelim:
		io.Copy(bw, br)
		bw.Flush()
		return false, false
	default:
		err = copyN(bw, br, r.contentLength, nil)
	}
	if err != nil {
		return false, false
	}
	if err := bw.Flush(); err != nil {
		return false, r.keepBackend
	}
	return !r.closeDelim, r.keepBackend
}

// copyChunked copies a chunked body verbatim, through its trailer section.
func copyChunked(w *bufio.Writer, r *bufio.Reader) error {
	for {
		l, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		size := l
		if i := bytes.IndexAny(size, ";\r\n"); i >= 0 {
			size = size[:i]
		}
		n, ok := chunkSize(bytes.Trim(size, " \t"))
		if !ok {
			return errMalformed
		}
		if _, err := w.Write(l); err != nil {
			return err
		}
		if n == 0 {
			// Trailer fields, then the empty line.
			for {
				l, err := r.ReadSlice('\n')
				if err != nil {
					return err
				}
				if _, err := w.Write(l); err != nil {
					return err
				}
				if len(bytes.TrimRight(l, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if err := copyN(w, r, n, nil); err != nil {
			return err
		}
		crlf, err := r.ReadSlice('\n')
		if err != nil || len(bytes.TrimRight(crlf, "\r\n")) != 0 {
			return errMalformed
		}
		if _, err := w.Write(crlf); err != nil {
			return err
		}
	}
}

// chunkSize parses a backend's chunk size: hex digits only, at most 15 of
// them, as net/http's chunked reader; strconv.ParseInt also took a sign
// ("+5"), which the front door then relayed to clients that refuse it.
func chunkSize(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

// bufferedConn is a connection whose first bytes were already read into br.
type bufferedConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// handoffListener hands connections from the fast path to an http.Server.
type handoffListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }
