package listener_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/internal/bearer"
	"github.com/grayzone/grayzone/telemetry/listener"
)

const tok = "ingest-token-0123456789"

func tokens() []bearer.Token {
	return []bearer.Token{{Name: "app", Secret: tok, Scopes: bearer.Ingest}}
}

// serve runs h behind a guard on loopback and returns its base URL.
func serve(t *testing.T, lim listener.Limits, h http.Handler) string {
	t.Helper()
	g, err := listener.New("test", listener.Security{Tokens: tokens}, lim, 1<<20, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := g.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, run := g.ServeHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h != nil {
			h.ServeHTTP(w, r)
			return
		}
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			code, msg := g.BodyStatus(err)
			http.Error(w, msg, code)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	go run()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func post(t *testing.T, url string, body io.Reader, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, body)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestGuardRequiresCredentials(t *testing.T) {
	if _, err := listener.New("x", listener.Security{}, listener.Limits{}, 1, nil); err == nil {
		t.Fatal("a guard without tokens or insecure was built")
	}
}

// TestGzipBomb: 64 MiB of zeros, gzipped to some 64 KiB, is refused
// with 413 once the decompressed body passes the limit; it never lands in
// memory.
func TestGzipBomb(t *testing.T) {
	url := serve(t, listener.Limits{MaxBodyBytes: 1 << 20}, nil)
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	zero := make([]byte, 1<<20)
	for range 64 {
		zw.Write(zero)
	}
	zw.Close()
	code, msg := post(t, url, &z, map[string]string{"Authorization": "Bearer " + tok, "Content-Encoding": "gzip"})
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "after decompression") {
		t.Fatalf("gzip bomb: %d %s", code, msg)
	}
	code, _ = post(t, url, strings.NewReader("x"), map[string]string{"Authorization": "Bearer " + tok, "Content-Encoding": "br"})
	if code != http.StatusUnsupportedMediaType {
		t.Fatalf("br: %d", code)
	}
}

// TestTokenBeforeBody: without a valid ingest token the answer is 401 and
// the handler never runs.
func TestTokenBeforeBody(t *testing.T) {
	ran := false
	url := serve(t, listener.Limits{}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran = true }))
	for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic " + tok} {
		code, _ := post(t, url, strings.NewReader("x"), map[string]string{"Authorization": auth})
		if code != http.StatusUnauthorized {
			t.Errorf("%q: %d, want 401", auth, code)
		}
	}
	if ran {
		t.Fatal("the handler ran for an unauthenticated request")
	}
}

// TestInFlightCapIs429: with the one slot held by a slow body, the next
// request is answered 429 at once, with the reason.
func TestInFlightCapIs429(t *testing.T) {
	url := serve(t, listener.Limits{MaxInFlight: 1, BodyTimeout: time.Minute}, nil)
	pr, pw := io.Pipe()
	defer pw.Close()
	started := make(chan struct{})
	go func() {
		req, _ := http.NewRequest("POST", url, pr)
		req.Header.Set("Authorization", "Bearer "+tok)
		close(started)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	pw.Write([]byte("trickle")) // the body is being read: the slot is held
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, msg := post(t, url, strings.NewReader("x"), map[string]string{"Authorization": "Bearer " + tok})
		if code == http.StatusTooManyRequests {
			if !strings.Contains(msg, "max_in_flight") {
				t.Fatalf("429 without the reason: %s", msg)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never 429: last %d %s", code, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Cap holds the connection past max in the backlog until one closes.
func TestCapHoldsConnectionsPastMax(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := listener.Cap(raw, 2)
	defer ln.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first := <-accepted
	<-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted while two were open (cap 2)")
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting connection was not accepted after one closed")
	}
}
