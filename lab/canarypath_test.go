package lab

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCanaryPathCutAndRestore(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok "+r.URL.Path) }))
	defer srv.Close()
	p, err := newCanaryPath(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	client := &http.Client{Transport: &http.Transport{}}
	get := func() (string, error) {
		resp, err := client.Get(p.URL() + "/ride")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if body, err := get(); err != nil || body != "ok /ride" {
		t.Fatalf("through the path: %q, %v", body, err)
	}
	// Cut: the kept-alive connection is reset and new ones are refused.
	p.SetCut(true)
	for i := range 3 {
		if body, err := get(); err == nil {
			t.Fatalf("call %d through a cut path answered %q", i, body)
		}
	}
	p.SetCut(false)
	if body, err := get(); err != nil || body != "ok /ride" {
		t.Fatalf("after restore: %q, %v", body, err)
	}
}
