package frontdoor

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"
)

// FuzzFastPathParse is a differential test of the fast path's request-head
// parser against net/http's: whatever head the fast path takes on (parse
// true), net/http must read as a valid request with the same method,
// target, Content-Length and Connection: close, and no transfer coding. Anything else the fast
// path must leave to net/http (parse false), which is the reference.
func FuzzFastPathParse(f *testing.F) {
	for _, s := range []string{
		"GET /ride HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /pay?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8081\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n",
		"GET /home HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
		"HEAD /signin HTTP/1.1\r\nhost: a\r\nAccept: */*\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n",
		"GET /a HTTP/1.1\nHost: a\n\n",
		"GET /a HTTP/1.0\r\nHost: a\r\n\r\n",
		"GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET /a HTTP/1.1\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nConnection: close, Upgrade\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
		"GET  /a HTTP/1.1\r\nHost: a\r\n\r\n",
		"G@T /a HTTP/1.1\r\nHost: a\r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\n Host: b\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost : a\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n := headEnd(data, 0)
		if n == 0 {
			return
		}
		head := data[:n]
		var r fastReq
		if !r.parse(head) {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("fast path took on %q, which net/http rejects: %v", head, err)
		}
		if req.Method != string(r.method) || req.RequestURI != string(r.target) {
			t.Fatalf("%q: fast path %s %s, net/http %s %s", head, r.method, r.target, req.Method, req.RequestURI)
		}
		if req.ContentLength != r.contentLength {
			t.Fatalf("%q: fast path Content-Length %d, net/http %d", head, r.contentLength, req.ContentLength)
		}
		if req.Close != r.closeConn {
			t.Fatalf("%q: fast path close %v, net/http %v", head, r.closeConn, req.Close)
		}
		if len(req.TransferEncoding) > 0 {
			t.Fatalf("%q: net/http sees transfer encoding %v", head, req.TransferEncoding)
		}
	})
}
