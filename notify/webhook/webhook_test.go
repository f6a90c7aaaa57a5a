package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/notify"
	"github.com/grayzone/grayzone/notify/event"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

// A receiver verifies the signature with Verify and reads a CloudEvent;
// a tampered body, another secret, or an old timestamp is refused.
func TestNotifySignedCloudEvent(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	type got struct {
		h    http.Header
		body []byte
	}
	ch := make(chan got, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- got{r.Header.Clone(), b}
	}))
	defer srv.Close()
	n := &Notifier{URL: srv.URL, Secret: secret, Source: "https://gz.example", Now: func() time.Time { return now }}
	e := event.Event{ID: event.NewID(), Version: event.Version, Kind: event.ShiftStarted, At: now.Add(-time.Second), Resource: "api", Zone: "z1", Origin: "auto", Message: "m"}
	if err := n.Notify(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	g := <-ch
	if ct := g.h.Get("Content-Type"); ct != ContentType || g.h.Get(HeaderIdempotency) != e.ID || g.h.Get(HeaderTimestamp) != "1800000000" {
		t.Fatalf("headers %v", g.h)
	}
	if err := Verify(secret, g.h, g.body, now.Add(time.Minute), 0); err != nil {
		t.Fatal(err)
	}
	var ce map[string]any
	if err := json.Unmarshal(g.body, &ce); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"specversion": "1.0", "id": e.ID, "source": "https://gz.example", "type": "io.grayzone.v1.shift.started",
		"datacontenttype": "application/json", "subject": "api/z1", "time": e.At.UTC().Format(time.RFC3339)} {
		if ce[k] != want {
			t.Errorf("%s = %v, want %v", k, ce[k], want)
		}
	}
	if d, _ := ce["data"].(map[string]any); d["origin"] != "auto" || d["id"] != e.ID {
		t.Errorf("data %v", ce["data"])
	}
	tampered := []byte(strings.Replace(string(g.body), `"auto"`, `"manual"`, 1))
	for name, err := range map[string]error{
		"tampered":      Verify(secret, g.h, tampered, now, 0),
		"other secret":  Verify([]byte("another-secret-another-secret-xx"), g.h, g.body, now, 0),
		"replayed late": Verify(secret, g.h, g.body, now.Add(10*time.Minute), 0),
		"unsigned":      Verify(secret, http.Header{}, g.body, now, 0),
	} {
		want := map[string]error{"tampered": ErrSignature, "other secret": ErrSignature, "replayed late": ErrStale, "unsigned": ErrNoSignature}[name]
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
}

// 5xx and 429 are retried; other 4xx are permanent.
func TestStatusVerdicts(t *testing.T) {
	code := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
	defer srv.Close()
	n := &Notifier{URL: srv.URL, Secret: secret}
	for _, tt := range []struct {
		code     int
		ok, perm bool
	}{{200, true, false}, {204, true, false}, {500, false, false}, {503, false, false}, {429, false, false}, {400, false, true}, {401, false, true}} {
		code = tt.code
		err := n.Notify(context.Background(), event.Event{ID: "x", Kind: event.Detection})
		if (err == nil) != tt.ok || notify.IsPermanent(err) != tt.perm {
			t.Errorf("HTTP %d: %v (permanent %v)", tt.code, err, notify.IsPermanent(err))
		}
	}
}
