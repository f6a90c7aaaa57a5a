package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xdsresource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/grayzone/grayzone/actuator/haproxy"
	"github.com/grayzone/grayzone/actuator/xds"
	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/internal/freeport"
	"github.com/grayzone/grayzone/server/config"
)

// startHAProxy runs a real HAProxy for zones z1 and z2, two servers each
// (z1-1, z1-2, z2-1, z2-2 in backend regional, on dead ports), logging to
// logAddr when set; it stops when the test ends.
func startHAProxy(t *testing.T, logAddr string) (haproxy.Layout, *haproxy.Process) {
	t.Helper()
	dir, err := os.MkdirTemp("", "gzsrv") // short: the socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l := haproxy.Layout{Socket: filepath.Join(dir, "admin.sock"), Regional: freeport.Addr(t), Zonal: map[string]string{}, Log: logAddr,
		EpochMap: filepath.Join(dir, haproxy.EpochMapFile)}
	if err := os.WriteFile(l.EpochMap, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, z := range []string{"z1", "z2"} {
		l.Zonal[z] = freeport.Addr(t)
		for j := 1; j <= 2; j++ {
			l.Targets = append(l.Targets, haproxy.Target{ID: fmt.Sprintf("%s-%d", z, j), Zone: z, Addr: fmt.Sprintf("127.0.0.1:%d", 1+i*2+j)})
		}
	}
	proc, err := haproxy.Start(context.Background(), dir, l.Config(), l.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proc.Stop)
	return l, proc
}

// serve with frontdoor type haproxy, against a real HAProxy: a shift drains
// the zone's servers; after serve restarts and HAProxy reloads (forgetting
// runtime state) the shift in force is back in HAProxy.
func TestServeDrivesRealHAProxy(t *testing.T) {
	if _, err := haproxy.Binary(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	logAddr := udpAddr(t)
	l, proc := startHAProxy(t, logAddr)
	y := fmt.Sprintf(`listen: 127.0.0.1:0
auth: {tokens: [test-token-0123456789abcdef]}
resources:
  - name: web
    zones: [z1, z2]
    frontdoor:
      type: haproxy
      runtime_api: %s
      reconcile_interval: 5s
      log_listen: %s
      backends:
        regional: {z1: [z1-1, z1-2], z2: [z2-1, z2-2]}
`, l.Socket, logAddr)
	cfg, err := config.Parse("haproxy.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	fc := clock.NewFake(t0)
	ctx := context.Background()
	open := func() (*Service, func()) {
		s, err := Open(ctx, Options{Config: cfg, Log: slog.New(slog.DiscardHandler), Clock: fc})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Run(rctx) }()
		s.APIAddr()
		return s, func() { cancel(); <-done; s.Close() }
	}
	drainedZones := func() map[string]int {
		rows, err := proc.Runtime.ServersState(ctx, "regional")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, r := range rows {
			if r.Drained() {
				out[r.Server[:2]]++
			}
		}
		return out
	}
	s, stop := open()
	if _, err := s.StartShift(ctx, shift.StartRequest{Resource: "web", AwayFrom: "z2", ExpiresIn: time.Hour, Comment: "test", StartedBy: "t"}); err != nil {
		t.Fatal(err)
	}
	if got := drainedZones(); got["z2"] != 2 || got["z1"] != 0 {
		t.Fatalf("after the shift: drained %v, want z2's two servers", got)
	}
	stop()
	// HAProxy reloads while serve is down: it forgets the drain.
	if err := proc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := drainedZones(); got["z2"] != 0 {
		t.Fatalf("reload should forget the drain: %v", got)
	}
	s, stop = open()
	defer stop()
	// Run reconciles at once on start; HAProxy is another process, so poll.
	for deadline := time.Now().Add(5 * time.Second); drainedZones()["z2"] != 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("serve did not re-apply the shift in force after its restart")
		}
	}
	// HAProxy's request logs arrive as server-side observations (the
	// backends are dead ports: 503s, each naming the server tried).
	for i := 0; i < 4; i++ {
		if resp, err := http.Get("http://" + l.Regional + "/ride"); err == nil {
			resp.Body.Close()
		}
	}
	r := s.byName["web"]
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		n := uint64(0) // admitted at the gate (the engine takes them at the next tick)
		for _, st := range r.gate.Stats() {
			if st.Source == "haproxy_log" {
				n = st.Requests
			}
		}
		if n >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d server-side observations from HAProxy's logs, want 4", n)
		}
	}
	sh, _ := s.shifts.Active("web")
	if _, err := s.CancelShift(ctx, sh.ID, "t"); err != nil {
		t.Fatal(err)
	}
	if got := drainedZones(); got["z2"] != 0 {
		t.Fatalf("after the shift ended: drained %v", got)
	}
}

// serve with frontdoor type xds: a proxy's NACK is counted in /metrics.
func TestServeXDSCountsNACKsInMetrics(t *testing.T) {
	xdsAddr := freeport.Addr(t)
	y := fmt.Sprintf(`listen: 127.0.0.1:0
auth: {tokens: [test-token-0123456789abcdef], open_reads: true}
resources:
  - name: web
    zones: [z1, z2]
    frontdoor:
      type: xds
      listen: %s
      targets:
        - {id: z1-1, zone: z1, addr: 127.0.0.1:1}
        - {id: z1-2, zone: z1, addr: 127.0.0.1:2}
        - {id: z2-1, zone: z2, addr: 127.0.0.1:3}
        - {id: z2-2, zone: z2, addr: 127.0.0.1:4}
`, xdsAddr)
	cfg, err := config.Parse("xds.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Open(ctx, Options{Config: cfg, Log: slog.New(slog.DiscardHandler), Clock: clock.NewFake(t0)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	api := s.APIAddr()
	go xds.Watch(ctx, xdsAddr, nil, "picky-envoy", map[string][]string{xdsresource.EndpointType: {"web"}},
		func(xds.Update) error { return fmt.Errorf("unsupported field") })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get("http://" + api + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), `grayzone_xds_nacks_total{resource="web"} 1`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no NACK in /metrics within 10 s:\n%s", grepLines(string(b), "grayzone_xds"))
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func udpAddr(t *testing.T) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}
