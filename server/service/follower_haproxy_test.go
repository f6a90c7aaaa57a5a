package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	ctx := context.Background()
	pg, l, proc := startPostgresAndHAProxy(t)
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
	drainZ1(t, proc)

	s, advance := runHAProxyService(t, fmt.Sprintf("store: %s\nreplica: {name: r1, lease: 3s}\n", pg.URL()), relay, Options{})
	advance(10 * time.Second) // ten reconcile intervals, forty ticks, many lease attempts
	if s.leads() {
		t.Fatal("the replica leads while another holds the lease")
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the follower opened %d runtime API connection(s)", n)
	}
	stillDrained(t, proc)

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

// startPostgresAndHAProxy starts the shared store and the shared HAProxy
// of two replicas' tests; it skips under -short or without them.
func startPostgresAndHAProxy(t *testing.T) (*database.Cluster, haproxy.Layout, *haproxy.Process) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs HAProxy and PostgreSQL")
	}
	if _, err := haproxy.Binary(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if err := database.CheckPostgres(); err != nil {
		t.Skipf("postgresql not available: %v", err)
	}
	pg, err := database.StartPostgres(context.Background(), database.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Stop() })
	l, proc := startHAProxy(t, "")
	return pg, l, proc
}

// runHAProxyService runs serve in-process, on a fake clock, with front
// door type haproxy at runtime API address relay (reconcile interval 1 s);
// head adds top-level keys; election gives Options.Leading and LeaseEpoch. advance moves the
// clock in 100 ms steps, letting the service run between them.
func runHAProxyService(t *testing.T, head, relay string, election Options) (*Service, func(time.Duration)) {
	t.Helper()
	y := fmt.Sprintf(`listen: 127.0.0.1:0
%sauth: {tokens: [test-token-0123456789abcdef]}
resources:
  - name: web
    zones: [z1, z2]
    frontdoor:
      type: haproxy
      runtime_api: %s
      reconcile_interval: 1s
      backends:
        regional: {z1: [z1-1, z1-2], z2: [z2-1, z2-2]}
`, head, relay)
	cfg, err := config.Parse("haproxy.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	fc := clock.NewFake(time.Now())
	s, err := Open(context.Background(), Options{Config: cfg, Log: slog.New(slog.DiscardHandler), Clock: fc, Leading: election.Leading, LeaseEpoch: election.LeaseEpoch})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done; s.Close() })
	s.APIAddr()
	return s, func(d time.Duration) {
		for step := time.Duration(0); step < d; step += 100 * time.Millisecond {
			fc.Advance(100 * time.Millisecond)
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// drainZ1 drains z1's servers, as a leader's shift away from z1 does.
func drainZ1(t *testing.T, proc *haproxy.Process) {
	t.Helper()
	if err := proc.Runtime.SetState(context.Background(), haproxy.StateDrain, haproxy.Server{Backend: "regional", Name: "z1-1"}, haproxy.Server{Backend: "regional", Name: "z1-2"}); err != nil {
		t.Fatal(err)
	}
}

// stillDrained fails unless z1's servers are still drained.
func stillDrained(t *testing.T, proc *haproxy.Process) {
	t.Helper()
	rows, err := proc.Runtime.ServersState(context.Background(), "regional")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Server[:2] == "z1" && !r.Drained() {
			t.Fatalf("the leader's drain of %s was undone", r.Server)
		}
	}
}

// TestKubernetesLeaseFollowerNeverTouchesHAProxy: with leader_election
// kubernetes-lease (no shared store), a replica that does not hold the Lease
// opens no connection to the shared HAProxy; once it holds it, it drives it,
// its orders carrying the Lease's epoch into HAProxy's epoch record.
func TestKubernetesLeaseFollowerNeverTouchesHAProxy(t *testing.T) {
	if _, err := haproxy.Binary(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	l, proc := startHAProxy(t, "")
	relay, calls := countingRelay(t, l.Socket)
	drainZ1(t, proc)
	var leading atomic.Bool
	const leaseEpoch = 7 // the Lease changed holders 6 times before
	s, advance := runHAProxyService(t, "", relay, Options{Leading: leading.Load, LeaseEpoch: func() uint64 {
		if leading.Load() {
			return leaseEpoch
		}
		return 0
	}})
	advance(10 * time.Second)
	if n := calls.Load(); n != 0 || s.leads() {
		t.Fatalf("a follower: %d runtime API connection(s), leads %v", n, s.leads())
	}
	stillDrained(t, proc)
	leading.Store(true)
	record := func() string {
		keys, err := proc.Runtime.EpochRecord(context.Background(), l.EpochMap)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(keys)
	}
	for deadline := time.Now().Add(20 * time.Second); calls.Load() == 0 || record() != fmt.Sprintf("[%d]", leaseEpoch); advance(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("holding the Lease, the replica did not drive HAProxy under the Lease's epoch: %d connection(s), record %s", calls.Load(), record())
		}
	}
}

// TestDeposedLeaderRefusedByHAProxyEpochRecord: the leader writes its epoch
// into HAProxy's epoch record with its orders. When a newer leader's epoch
// is there (a replica that still believes it leads, cut off from the store
// but not from HAProxy), its reconciles give HAProxy no orders: the newer
// leader's drain stays, and the refusals are counted in
// grayzone_haproxy_epoch_refused_total.
func TestDeposedLeaderRefusedByHAProxyEpochRecord(t *testing.T) {
	ctx := context.Background()
	pg, l, proc := startPostgresAndHAProxy(t)
	s, advance := runHAProxyService(t, fmt.Sprintf("store: %s\nreplica: {name: r1, lease: 3s}\n", pg.URL()), l.Socket, Options{})
	record := func() string {
		keys, err := proc.Runtime.EpochRecord(ctx, l.EpochMap)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(keys)
	}
	var epoch uint64
	for deadline := time.Now().Add(20 * time.Second); ; advance(100 * time.Millisecond) {
		if e, ok := s.rep.run.Leading(); ok && record() == fmt.Sprintf("[%d]", e) {
			epoch = e
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader's epoch is not in HAProxy's record: %v", record())
		}
	}
	// A newer leader wrote its epoch and drained z1.
	if out, err := proc.Runtime.Do(ctx, fmt.Sprintf("add map %s %d newer", l.EpochMap, epoch+1), fmt.Sprintf("del map %s %d", l.EpochMap, epoch)); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("add map, del map: %q %v", out, err)
	}
	drainZ1(t, proc)
	advance(5 * time.Second) // five reconcile intervals: each would ready z1
	stillDrained(t, proc)
	if got := record(); got != fmt.Sprintf("[%d]", epoch+1) {
		t.Fatalf("record %s, want only the newer epoch %d", got, epoch+1)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister((*planeCollector)(s))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	refused := -1.0
	for _, mf := range mfs {
		if mf.GetName() == "grayzone_haproxy_epoch_refused_total" {
			refused = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if refused < 1 {
		t.Fatalf("grayzone_haproxy_epoch_refused_total = %v, want at least 1", refused)
	}
}
