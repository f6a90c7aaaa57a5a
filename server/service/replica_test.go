package service

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grayzone/grayzone/internal/certreload"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/leader"
	"github.com/grayzone/grayzone/server/store"
)

// heldElsewhere is a lease store in which another replica leads.
type heldElsewhere struct{ l store.Lease }

func (h heldElsewhere) AcquireLease(context.Context, string, string, time.Duration) (store.Lease, bool, error) {
	return h.l, false, nil
}
func (heldElsewhere) RenewLease(context.Context, string, uint64, time.Duration) (bool, error) {
	return false, nil
}
func (heldElsewhere) ReleaseLease(context.Context, string, uint64) error { return nil }

// TestFollowerRedirectUsesListenerScheme: a follower sends a mutation to the
// leader with its own listener's scheme, so a client re-sends its token over
// TLS when the API serves TLS (every replica serves the same way).
func TestFollowerRedirectUsesListenerScheme(t *testing.T) {
	lease := store.Lease{Holder: "b#00ff", Address: "10.0.0.9:8443", Epoch: 5}
	for _, tc := range []struct {
		certs *certreload.Cert
		want  string
	}{{nil, "http://10.0.0.9:8443/v1/shifts"}, {&certreload.Cert{}, "https://10.0.0.9:8443/v1/shifts"}} {
		run := leader.NewRunner(heldElsewhere{lease}, "a", "10.0.0.8:8443", leader.TimingFor(0), nil, slog.New(slog.DiscardHandler))
		run.Step(context.Background())
		s := &Service{cfg: &config.Config{Store: "postgres://shared"}, certs: tc.certs, rep: &replication{run: run}}
		h := s.followerGate(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("a follower served a mutation") }))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/shifts", nil))
		if rec.Code != http.StatusTemporaryRedirect || rec.Header().Get("Location") != tc.want {
			t.Errorf("TLS %v: %d Location %q, want 307 to %s", tc.certs != nil, rec.Code, rec.Header().Get("Location"), tc.want)
		}
	}
}

// TestFollowerForwardsBrowserMutations: a mutation from a browser (it
// carries Origin: the dashboard's fetch) is forwarded to the leader, over
// TLS verified with this replica's own certificate file, with the caller's
// token, and the leader's answer relayed; a mutation forwarded once is never
// forwarded again (503); a leader whose certificate is not trusted is 502.
func TestFollowerForwardsBrowserMutations(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer tok" || !strings.HasPrefix(r.Header.Get(ForwardedHeader), "a#") || r.URL.Path != "/v1/decisions/d1/approve" {
			t.Errorf("the leader got %s %s, Authorization %q, %s %q", r.Method, r.URL.Path, r.Header.Get("Authorization"), ForwardedHeader, r.Header.Get(ForwardedHeader))
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"d1","status":"approved"}`))
	}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case's refused handshake
	defer ts.Close()
	trusted := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(trusted, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	lease := store.Lease{Holder: "b#00ff", Address: strings.TrimPrefix(ts.URL, "https://"), Epoch: 5}
	serve := func(certFile string, header http.Header) *httptest.ResponseRecorder {
		run := leader.NewRunner(heldElsewhere{lease}, "a", "10.0.0.8:8443", leader.TimingFor(0), nil, slog.New(slog.DiscardHandler))
		run.Step(context.Background())
		s := &Service{cfg: &config.Config{Store: "postgres://shared", TLS: config.TLS{CertFile: certFile}}, certs: &certreload.Cert{},
			rep: &replication{run: run}, log: slog.New(slog.DiscardHandler)}
		h := s.followerGate(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("a follower served a mutation") }))
		req := httptest.NewRequest(http.MethodPost, "/v1/decisions/d1/approve", nil)
		req.Header = header
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	browser := http.Header{"Origin": {"https://10.0.0.8:8443"}, "Authorization": {"Bearer tok"}}
	if rec := serve(trusted, browser); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"approved"`) || calls.Load() != 1 {
		t.Fatalf("a browser's approval: %d %s (%d calls), want the leader's 200", rec.Code, rec.Body, calls.Load())
	}
	if rec := serve(trusted, http.Header{"Authorization": {"Bearer tok"}}); rec.Code != http.StatusTemporaryRedirect {
		t.Errorf("a CLI's approval: %d, want 307", rec.Code)
	}
	again := browser.Clone()
	again.Set(ForwardedHeader, "c")
	if rec := serve(trusted, again); rec.Code != http.StatusServiceUnavailable || calls.Load() != 1 {
		t.Errorf("a mutation forwarded already: %d (%d calls), want 503 and no second hop", rec.Code, calls.Load())
	}
	if rec := serve("", browser); rec.Code != http.StatusBadGateway || calls.Load() != 1 {
		t.Errorf("a leader with an untrusted certificate: %d (%d calls), want 502", rec.Code, calls.Load())
	}
}
