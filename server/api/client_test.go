package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/store"
	"github.com/grayzone/grayzone/telemetry/batch"
)

func TestClientRoundTrip(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	srv := server(t, f, false)
	c := api.NewClient(srv.URL+"/", token) // a trailing slash is tolerated

	s, err := c.StartShift(ctx, api.StartShiftRequest{Resource: "web", AwayFrom: "use2-az1", ExpiresIn: "30m", Comment: "c"})
	if err != nil || s.ID != "gzs-1" || !s.ExpiresAt.Equal(t0.Add(30*time.Minute)) || s.StartedBy != "alice" {
		t.Fatalf("StartShift = %+v, %v", s, err)
	}
	if got, err := c.Shift(ctx, "gzs-1"); err != nil || got.ID != s.ID || !got.StartedAt.Equal(s.StartedAt) {
		t.Errorf("Shift = %+v, %v", got, err)
	}
	if got, err := c.Shifts(ctx, shift.ListFilter{Resource: "web", Status: shift.Active}); err != nil || len(got) != 1 {
		t.Errorf("Shifts = %+v, %v", got, err)
	}
	f.read(func() {
		if f.filter != (shift.ListFilter{Resource: "web", Status: shift.Active}) {
			t.Errorf("filter sent = %+v", f.filter)
		}
	})
	d, comment := "1h", "longer"
	if got, err := c.UpdateShift(ctx, "gzs-1", api.UpdateShiftRequest{ExpiresIn: &d, Comment: &comment}); err != nil ||
		got.Comment != "longer" || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("UpdateShift = %+v, %v", got, err)
	}
	if got, err := c.CancelShift(ctx, "gzs-1"); err != nil || got.Status != shift.Canceled {
		t.Errorf("CancelShift = %+v, %v", got, err)
	}
	if st, err := c.Status(ctx); err != nil || len(st.Resources) != 1 || st.Resources[0].Zones[0].Availability != 0.9712 || !st.Now.Equal(t0) {
		t.Errorf("Status = %+v, %v", st, err)
	}
	if as, err := c.Alarms(ctx, "web"); err != nil || len(as) != 2 || as[0].State != "ALARM" {
		t.Errorf("Alarms = %+v, %v", as, err)
	}
	q := store.AuditQuery{Resource: "web", After: 1, Before: 100, Limit: 10}
	if es, err := c.Audit(ctx, q); err != nil || len(es) != 1 || es[0].Kind != "shift_started" {
		t.Errorf("Audit = %+v, %v", es, err)
	}
	f.read(func() {
		if f.auditQ != q {
			t.Errorf("audit query sent = %+v", f.auditQ)
		}
	})
	if ps, err := c.Practices(ctx, "web", 4); err != nil || ps == nil || len(ps) != 0 {
		t.Errorf("Practices = %#v, %v", ps, err)
	}
	if ds, err := c.Decisions(ctx); err != nil || len(ds) != 1 {
		t.Errorf("Decisions = %+v, %v", ds, err)
	}
	if dd, err := c.Approve(ctx, "d1"); err != nil || dd.Status != "approved" {
		t.Errorf("Approve = %+v, %v", dd, err)
	}
	n, err := c.Ingest(ctx, batch.ObservationBatch{Resource: "web", Observations: []batch.ObservationIn{
		{Source: "server", Zone: "use2-az1", Operation: "GET /", Outcome: "success", LatencyMs: 2},
		{Source: "canary", Zone: "use2-az2", Operation: "GET /", Status: new(int), LatencyMs: 2000},
	}})
	if err != nil || n != 2 {
		t.Errorf("Ingest = %d, %v", n, err)
	}

	// Errors come back typed, with the server's message.
	_, err = c.Shift(ctx, "nope")
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Message != `shift "nope": not found` {
		t.Errorf("Shift(nope) error = %#v", err)
	}
	if !api.IsStatus(err, http.StatusNotFound) || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("error %q", err)
	}
	if _, err := api.NewClient(srv.URL, "").CancelShift(ctx, "gzs-1"); !api.IsStatus(err, 401) {
		t.Errorf("no token: %v", err)
	}
	// A path-hostile id is escaped, not routed elsewhere.
	if _, err := c.Shift(ctx, "../status"); !api.IsStatus(err, 404) {
		t.Errorf("Shift(../status) = %v, want 404", err)
	}
}

func TestClientNonAPIError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	}))
	defer srv.Close()
	_, err := api.NewClient(srv.URL, "").Status(context.Background())
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Message != "Bad Gateway" {
		t.Errorf("err = %#v", err)
	}
}

func TestClientConnectionError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := api.NewClient(url, "").Status(context.Background())
	var ae *api.APIError
	if err == nil || errors.As(err, &ae) {
		t.Errorf("err = %v, want a transport error", err)
	}
}
