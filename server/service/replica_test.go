package service

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
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
