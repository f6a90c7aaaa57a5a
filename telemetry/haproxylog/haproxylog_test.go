package haproxylog

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/grayzone/grayzone/actuator/haproxy"
)

func TestParse(t *testing.T) {
	e, err := Parse("<134>Dec  2 00:10:01 haproxy[4242]: 127.0.0.1 regional web-3 503 2004 GET /ride/7\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Entry{Backend: "regional", Server: "web-3", Status: 503, Total: 2004 * time.Millisecond, Method: "GET", Path: "/ride/7"}
	if e != want {
		t.Fatalf("got %+v, want %+v", e, want)
	}
	if e, err := Parse("<134>Dec  2 00:10:01 haproxy[1]: 10.0.0.9 regional <NOSRV> -1 -1 GET /x"); err != nil || e.Status != 0 || e.Total != 0 {
		t.Fatalf("aborted request: %+v %v", e, err)
	}
	for _, line := range []string{"<133>Dec  2 00:10:01 haproxy[1]: Proxy regional started.", "", "<134>x: a b c d e f g"} {
		if _, err := Parse(line); err == nil {
			t.Errorf("%q: want ErrNotRequest", line)
		}
	}
	if Format != haproxy.LogFormat {
		t.Fatalf("the generated configurations log %q, the parser reads %q", haproxy.LogFormat, Format)
	}
}

// A real HAProxy logs to the receiver; every request comes back as an entry
// naming the server that answered.
func TestRealHAProxyLogs(t *testing.T) {
	if _, err := haproxy.Binary(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	rcv, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	entries := make(chan Entry, 100)
	go rcv.Run(ctx, func(e Entry) { entries <- e })
	dir, err := os.MkdirTemp("", "gzlog")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	free := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().String()
	}
	l := haproxy.Layout{Socket: filepath.Join(dir, "admin.sock"), Regional: free(), Zonal: map[string]string{"za": free()}, Log: rcv.Addr()}
	for i := 1; i <= 2; i++ {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/pay" {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}))
		defer srv.Close()
		l.Targets = append(l.Targets, haproxy.Target{ID: fmt.Sprintf("za-%d", i), Zone: "za", Addr: srv.Listener.Addr().String()})
	}
	p, err := haproxy.Start(ctx, dir, l.Config(), l.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	for _, path := range []string{"/ride/1", "/ride/2", "/pay", "/home"} {
		resp, err := http.Get("http://" + l.Regional + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	got := map[string]Entry{}
	for len(got) < 4 {
		select {
		case e := <-entries:
			got[e.Path] = e
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of 4 log entries within 10 s: %+v", len(got), got)
		}
	}
	if e := got["/pay"]; e.Status != 503 || e.Backend != "regional" || (e.Server != "za-1" && e.Server != "za-2") {
		t.Fatalf("/pay: %+v", e)
	}
	if got["/ride/1"].Server == got["/ride/2"].Server {
		t.Fatalf("round robin should alternate servers: %+v", got)
	}
}
