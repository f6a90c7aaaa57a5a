package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grayzone/grayzone/actuator/haproxy"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/lab/database"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/store"
)

// countingRelay relays TCP connections to a unix socket (HAProxy's runtime
// API) and counts them: each is one batch of runtime API commands.
func countingRelay(t *testing.T, socket string) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() {
				defer c.Close()
				u, err := net.Dial("unix", socket)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c); u.(*net.UnixConn).CloseWrite() }()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
	return ln.Addr().String(), &n
}

// TestFollowerNeverTouchesHAProxy: a replica whose lease another holds
// reconciles its view every tick but opens no connection to the HAProxy
// runtime API it shares with the leader, for many reconcile intervals
// (before, its drift correction undid the leader's drain every interval);
// once the lease is free it leads and drives HAProxy.
func TestFollowerNeverTouchesHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs HAProxy and PostgreSQL")
	}
	if _, err := haproxy.Binary(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if err := database.CheckPostgres(); err != nil {
		t.Skipf("postgresql not available: %v", err)
	}
	ctx := context.Background()
	pg, err := database.StartPostgres(ctx, database.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	l, proc := startHAProxy(t, "")
	relay, calls := countingRelay(t, l.Socket)

	// Another replica leads (and has drained z1, as its shift says).
	db, err := store.OpenPostgres(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other, ok, err := db.AcquireLease(ctx, "other#1", "127.0.0.1:1", time.Hour)
	if err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	if err := proc.Runtime.SetState(ctx, haproxy.StateDrain, haproxy.Server{Backend: "regional", Name: "z1-1"}, haproxy.Server{Backend: "regional", Name: "z1-2"}); err != nil {
		t.Fatal(err)
	}

	y := fmt.Sprintf(`listen: 127.0.0.1:0
store: %s
replica: {name: r1, lease: 3s}
auth: {tokens: [test-token-0123456789abcdef]}
resources:
  - name: web
    zones: [z1, z2]
    frontdoor:
      type: haproxy
      runtime_api: %s
      reconcile_interval: 1s
      backends:
        regional: {z1: [z1-1, z1-2], z2: [z2-1, z2-2]}
`, pg.URL(), relay)
	cfg, err := config.Parse("haproxy.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	fc := clock.NewFake(time.Now())
	s, err := Open(ctx, Options{Config: cfg, Log: slog.New(slog.DiscardHandler), Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	defer func() { cancel(); <-done; s.Close() }()
	s.APIAddr()
	advance := func(d time.Duration) {
		for step := time.Duration(0); step < d; step += 100 * time.Millisecond {
			fc.Advance(100 * time.Millisecond)
			time.Sleep(5 * time.Millisecond)
		}
	}
	advance(10 * time.Second) // ten reconcile intervals, forty ticks, many lease attempts
	if s.leads() {
		t.Fatal("the replica leads while another holds the lease")
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the follower opened %d runtime API connection(s)", n)
	}
	if rows, err := proc.Runtime.ServersState(ctx, "regional"); err != nil {
		t.Fatal(err)
	} else {
		for _, r := range rows {
			if r.Server[:2] == "z1" && !r.Drained() {
				t.Fatalf("the leader's drain of %s was undone", r.Server)
			}
		}
	}

	// The leader goes: this replica takes over and drives HAProxy (no
	// shift in the store: it readies z1).
	if err := db.ReleaseLease(ctx, other.Holder, other.Epoch); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); calls.Load() == 0 || !s.leads(); {
		if time.Now().After(deadline) {
			t.Fatalf("the replica did not lead and drive HAProxy: leads %v, %d connection(s)", s.leads(), calls.Load())
		}
		advance(100 * time.Millisecond)
	}
}
