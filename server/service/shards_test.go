package service

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
)

// The gate of a sharded replica finds a mutation's resource in its body or
// path, and leaves the body whole for the handler.
func TestMutationResource(t *testing.T) {
	m, err := shift.NewManager([]shift.Resource{{Name: "web", Zones: []string{"z1", "z2"}}}, shift.NewMemoryStore(), func() string { return "sh-1" })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(time.Now(), shift.StartRequest{Resource: "web", AwayFrom: "z1", ExpiresIn: time.Hour, Comment: "c"}); err != nil {
		t.Fatal(err)
	}
	s := &Service{shifts: m}
	body := `{"resource":"api","away_from":"z2","expires_in":"1h"}`
	req := httptest.NewRequest(http.MethodPost, "/v1/shifts", strings.NewReader(body))
	if got := s.mutationResource(req); got != "api" {
		t.Fatalf("POST /v1/shifts: %q, want api", got)
	}
	if rest, _ := io.ReadAll(req.Body); string(rest) != body {
		t.Fatalf("the handler would read %q, want the whole body", rest)
	}
	for path, want := range map[string]string{"/v1/shifts/sh-1": "web", "/v1/shifts/sh-1/cancel": "web", "/v1/shifts/nope": "", "/v1/decisions/gzd-z1-1/approve": "", "/v1/decisions/gzd-api.z2-1/approve": "api"} {
		if got := s.mutationResource(httptest.NewRequest(http.MethodPost, path, nil)); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}
