package listener_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/grayzone/grayzone/telemetry/listener"
)

// FuzzGzipBody: whatever bytes arrive as a gzip body — a bomb, a truncated
// or corrupt stream, concatenated members — the handler never reads more
// than MaxBodyBytes of decompressed data, and a body over it ends in
// ErrTooLarge (413), never in a silent cut.
func FuzzGzipBody(f *testing.F) {
	const max = 64 << 10
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(make([]byte, 4<<20))
	zw.Close()
	f.Add(bomb.Bytes())
	f.Add(bomb.Bytes()[:bomb.Len()/2])
	var small bytes.Buffer
	zw = gzip.NewWriter(&small)
	zw.Write([]byte("hello"))
	zw.Close()
	f.Add(append(small.Bytes(), small.Bytes()...))
	f.Add([]byte("not gzip"))
	g, err := listener.New("fuzz", listener.Security{Insecure: true}, listener.Limits{MaxBodyBytes: max}, max, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var n int
		var readErr error
		h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var buf bytes.Buffer
			_, readErr = buf.ReadFrom(r.Body)
			n = buf.Len()
		}))
		req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		req.Header.Set("Content-Encoding", "gzip")
		h.ServeHTTP(httptest.NewRecorder(), req)
		if n > max {
			t.Fatalf("read %d decompressed bytes, limit %d", n, max)
		}
		if readErr == nil || errors.Is(readErr, io.EOF) {
			// A complete read: then the whole stream decompresses to n bytes.
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("accepted a body gzip cannot open: %v", err)
			}
			all, _ := io.ReadAll(io.LimitReader(zr, max+1))
			if len(all) > max {
				t.Fatalf("a body of more than %d bytes read without ErrTooLarge", max)
			}
		}
	})
}
