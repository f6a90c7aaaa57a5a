package dblink_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/grayzone/grayzone/lab/database"
	"github.com/grayzone/grayzone/lab/dblink"
)

// backend is a database behind the links under test.
type backend struct {
	name string
	addr string
	url  string
}

var backends []backend

func TestMain(m *testing.M) {
	// These tests mostly wait out the app's 2 s database timeout, they do
	// not compute: unless told otherwise, run more of them at once than the
	// default GOMAXPROCS, or the run takes minutes on a small machine.
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "16")
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	emb, err := database.StartEmbedded(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "StartEmbedded:", err)
		return 1
	}
	defer emb.Close()
	backends = append(backends, backend{name: "embedded", addr: emb.Addr(), url: emb.URL()})
	if database.PostgresAvailable() {
		pg, err := database.StartPostgres(ctx, database.PostgresOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "StartPostgres:", err)
			return 1
		}
		defer pg.Stop()
		backends = append(backends, backend{name: "postgres", addr: pg.Addr(), url: pg.URL()})
	}
	for _, b := range backends {
		if err := database.Migrate(ctx, b.url); err != nil {
			fmt.Fprintf(os.Stderr, "Migrate %s: %v\n", b.name, err)
			return 1
		}
	}
	return m.Run()
}

// forEachBackend runs fn as a parallel subtest per backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
	if len(backends) == 1 {
		t.Run("postgres", func(t *testing.T) {
			t.Skipf("no real PostgreSQL, tested against the embedded store only: %v", database.CheckPostgres())
		})
	}
}

// newLink starts a link to b and a client through it, both closed at the
// end of the test, and makes one call so the pool has a warm connection.
func newLink(t *testing.T, b backend, seed int64) (*dblink.Link, *database.Client) {
	t.Helper()
	ctx := t.Context()
	l, err := dblink.New(ctx, t.Name(), b.addr, dblink.Options{Seed: seed})
	if err != nil {
		t.Fatalf("dblink.New: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	c, err := database.Open(ctx, linkURL(b, l))
	if err != nil {
		t.Fatalf("database.Open: %v", err)
	}
	t.Cleanup(c.Close)
	if _, err := c.Ride(ctx, "use2-az1", "use2-az1-1"); err != nil {
		t.Fatalf("warm-up call: %v", err)
	}
	return l, c
}

// linkURL is b's URL with the link in between.
func linkURL(b backend, l *dblink.Link) string {
	return strings.Replace(b.url, b.addr, l.Addr(), 1)
}

func set(t *testing.T, l *dblink.Link, faults ...dblink.Fault) {
	t.Helper()
	if err := l.Set(faults); err != nil {
		t.Fatalf("Set(%v): %v", faults, err)
	}
}

type result struct {
	d   time.Duration
	err error
}

// calls makes n app calls (rides and payments alternating) with the given
// number of concurrent workers.
func calls(ctx context.Context, c *database.Client, n, workers int) []result {
	out := make([]result, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				start := time.Now()
				var err error
				if i%2 == 0 {
					_, err = c.Ride(ctx, "use2-az1", fmt.Sprintf("use2-az1-%d", w))
				} else {
					_, err = c.Pay(ctx, "use2-az1", fmt.Sprintf("use2-az1-%d", w), int64(100+i))
				}
				out[i] = result{d: time.Since(start), err: err}
			}
		})
	}
	wg.Wait()
	return out
}

// stats splits results into successes and failures and their durations.
type stats struct {
	ok, failed []time.Duration
	errs       []error
}

func summarize(rs []result) stats {
	var s stats
	for _, r := range rs {
		if r.err == nil {
			s.ok = append(s.ok, r.d)
		} else {
			s.failed = append(s.failed, r.d)
			s.errs = append(s.errs, r.err)
		}
	}
	slices.Sort(s.ok)
	slices.Sort(s.failed)
	return s
}

func (s stats) ratio() float64 { return float64(len(s.failed)) / float64(len(s.ok)+len(s.failed)) }

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[len(ds)/2]
}

func (s stats) String() string {
	return fmt.Sprintf("%d ok (median %v), %d failed (%.1f%%, median %v, range %v..%v)",
		len(s.ok), median(s.ok).Round(time.Millisecond), len(s.failed), 100*s.ratio(),
		median(s.failed).Round(time.Millisecond), first(s.failed).Round(time.Millisecond), last(s.failed).Round(time.Millisecond))
}

func first(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[0]
}

func last(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[len(ds)-1]
}

// The app's 2 s database timeout, as seen by a caller: a stalled call fails
// at the timeout, give or take scheduling on a busy machine; a fast failure
// (a reset) well before it.
const (
	stallMin = 1900 * time.Millisecond
	stallMax = 3 * time.Second
	fastFail = 500 * time.Millisecond
)

// atLeast counts the durations of at least d.
func atLeast(ds []time.Duration, d time.Duration) int {
	n := 0
	for _, x := range ds {
		if x >= d {
			n++
		}
	}
	return n
}

func TestNoFaults(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		_, c := newLink(t, b, 1)
		s := summarize(calls(t.Context(), c, 40, 4))
		t.Log(s)
		if len(s.failed) > 0 {
			t.Fatalf("%s; first error: %v", s, s.errs[0])
		}
	})
}

func TestLatency(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c := newLink(t, b, 2)
		ctx := t.Context()
		set(t, l, dblink.Fault{Kind: dblink.KindLatency, Latency: 100 * time.Millisecond, Jitter: 5 * time.Millisecond})
		s := summarize(calls(ctx, c, 15, 1))
		t.Log("latency 100ms±5ms:", s)
		if len(s.failed) > 0 {
			t.Fatalf("%s; first error: %v", s, s.errs[0])
		}
		if m := median(s.ok); m < 90*time.Millisecond || m >= time.Second {
			t.Errorf("median %v, want ~100ms", m)
		}

		// Latency is per call: pgx's health ping is not slowed. A connect
		// without the fault first is the yardstick for the connect under it.
		set(t, l)
		start := time.Now()
		plain, err := pgconn.Connect(ctx, linkURL(b, l))
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		baseline := time.Since(start)
		plain.Close(ctx)
		set(t, l, dblink.Fault{Kind: dblink.KindLatency, Latency: 300 * time.Millisecond})
		start = time.Now()
		conn, err := pgconn.Connect(ctx, linkURL(b, l))
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer conn.Close(ctx)
		connected := time.Since(start)
		start = time.Now()
		if err := conn.Ping(ctx); err != nil {
			t.Fatalf("ping: %v", err)
		}
		pinged := time.Since(start)
		start = time.Now()
		if _, err := conn.Exec(ctx, "INSERT INTO rides (zone, instance) VALUES ('z', 'i') RETURNING id").ReadAll(); err != nil {
			t.Fatalf("insert: %v", err)
		}
		inserted := time.Since(start)
		t.Logf("latency 300ms: connect %v (%v without the fault), ping %v, call %v", connected, baseline, pinged, inserted)
		// Connecting is logged, not asserted: in 2 of 5 runs on 2 December
		// 2026 a connect under the fault took 260-390 ms longer than one
		// without it (one delay, perhaps), in the others not; an open
		// question about the link's framing of the startup exchange.
		if pinged >= 250*time.Millisecond || inserted < 290*time.Millisecond {
			t.Errorf("latency 300ms: ping %v (want fast), call %v (want >= 300ms)", pinged, inserted)
		}

		set(t, l)
		s = summarize(calls(ctx, c, 15, 1))
		t.Log("cleared:", s)
		if len(s.failed) > 0 || median(s.ok) >= 80*time.Millisecond {
			t.Errorf("after clearing: %s", s)
		}
	})
}

func TestBlackhole(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c := newLink(t, b, 3)
		ctx := t.Context()
		set(t, l, dblink.Fault{Kind: dblink.KindBlackhole})
		// More calls than pooled connections: new connections stall too.
		s := summarize(calls(ctx, c, 12, 12))
		t.Log("blackhole:", s)
		if len(s.ok) > 0 {
			t.Errorf("%d calls got through a blackhole", len(s.ok))
		}
		if first(s.failed) < stallMin || last(s.failed) > stallMax {
			t.Errorf("failures took %v..%v, want %v..%v", first(s.failed), last(s.failed), stallMin, stallMax)
		}
		set(t, l)
		start := time.Now()
		s = summarize(calls(ctx, c, 20, 4))
		t.Log("cleared:", s, "in", time.Since(start).Round(time.Millisecond))
		if len(s.failed) > 0 {
			t.Errorf("after clearing: %s; first error: %v", s, s.errs[0])
		}
	})
}

func TestPacketLoss(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c := newLink(t, b, 4)
		set(t, l, dblink.Fault{Kind: dblink.KindPacketLoss, Percent: 30})
		start := time.Now()
		s := summarize(calls(t.Context(), c, 200, database.MaxConns))
		t.Log("packet_loss 30%:", s, "in", time.Since(start).Round(time.Millisecond))
		// n=200, p=0.3: sd 3.2 points; the band is > 3.5 sd either side.
		if r := s.ratio(); r < 0.18 || r > 0.42 {
			t.Errorf("failure ratio %.3f, want 0.18..0.42", r)
		}
		if first(s.failed) < stallMin || median(s.failed) > stallMax {
			t.Errorf("failures took %v..%v (median %v), want ~2s", first(s.failed), last(s.failed), median(s.failed))
		}
		if m := median(s.ok); m > 200*time.Millisecond {
			t.Errorf("successful calls: median %v, want fast", m)
		}
	})
}

func TestReset(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c := newLink(t, b, 5)
		set(t, l, dblink.Fault{Kind: dblink.KindReset, Percent: 30})
		s := summarize(calls(t.Context(), c, 200, 4))
		t.Log("reset 30%:", s)
		if r := s.ratio(); r < 0.18 || r > 0.42 {
			t.Errorf("failure ratio %.3f, want 0.18..0.42", r)
		}
		// A reset fails at once, never at the timeout. A failed call that
		// also had to reconnect first (a server process, authentication)
		// can take a second on a busy machine, so the test is the typical
		// failure, and that (almost) none waited out the 2 s timeout.
		if m := median(s.failed); m >= fastFail {
			t.Errorf("median failure %v, want < %v", m, fastFail)
		}
		if n := atLeast(s.failed, stallMin); n > len(s.failed)/20 {
			t.Errorf("%d of %d failures took %v or more (a stall, not a reset)", n, len(s.failed), stallMin)
		}
	})
}

func TestOverlappingFaults(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c := newLink(t, b, 6)
		ctx := t.Context()

		// A zone latency and a region latency add up.
		set(t, l,
			dblink.Fault{Kind: dblink.KindLatency, Latency: 60 * time.Millisecond},
			dblink.Fault{Kind: dblink.KindLatency, Latency: 40 * time.Millisecond, Jitter: 5 * time.Millisecond})
		s := summarize(calls(ctx, c, 10, 1))
		t.Log("latency 60ms + 40ms:", s)
		if m := median(s.ok); len(s.failed) > 0 || m < 90*time.Millisecond || m >= time.Second {
			t.Errorf("latency 60ms + 40ms: %s, want median ~100ms", s)
		}

		// A blackhole swallows calls whatever else is active; lifting it
		// leaves the rest in force.
		set(t, l,
			dblink.Fault{Kind: dblink.KindLatency, Latency: 100 * time.Millisecond},
			dblink.Fault{Kind: dblink.KindBlackhole})
		s = summarize(calls(ctx, c, 4, 4))
		t.Log("latency + blackhole:", s)
		if len(s.ok) > 0 || first(s.failed) < stallMin || last(s.failed) > stallMax {
			t.Errorf("latency + blackhole: %s, want every call to fail at ~2s", s)
		}
		set(t, l, dblink.Fault{Kind: dblink.KindLatency, Latency: 100 * time.Millisecond})
		s = summarize(calls(ctx, c, 10, 1))
		t.Log("blackhole lifted, latency stays:", s)
		if m := median(s.ok); len(s.failed) > 0 || m < 90*time.Millisecond || m >= time.Second {
			t.Errorf("blackhole lifted: %s, want all ok at ~100ms", s)
		}

		// Loss and reset roll independently: 20% stall, then 80%×20% = 16%
		// reset, 36% in all.
		set(t, l,
			dblink.Fault{Kind: dblink.KindPacketLoss, Percent: 20},
			dblink.Fault{Kind: dblink.KindReset, Percent: 20})
		rs := calls(ctx, c, 150, database.MaxConns)
		s = summarize(rs)
		// A stall fails at the timeout. A reset fails before it: at once,
		// mostly, but some only after a slow reconnect (on a busy machine,
		// or when the 20% loss drops its SYN, which Linux sends again after
		// 1 s). CI saw 3 of 35 resets take 0.5 to 1.9 s. Nothing fails
		// later than a stall.
		var stalled, reset, fast int
		for _, r := range rs {
			switch {
			case r.err == nil:
			case r.d >= stallMin && r.d <= stallMax:
				stalled++
			case r.d < stallMin:
				reset++
				if r.d < fastFail {
					fast++
				}
			}
		}
		t.Logf("packet_loss 20%% + reset 20%%: %s; %d stalled, %d reset (%d of them fast)", s, stalled, reset, fast)
		if r := s.ratio(); r < 0.22 || r > 0.50 {
			t.Errorf("failure ratio %.3f, want 0.22..0.50", r)
		}
		if other := len(s.failed) - stalled - reset; other > 0 {
			t.Errorf("%d failures after the stall timeout (over %s)", other, stallMax)
		}
		if fast < reset/2 {
			t.Errorf("only %d of %d resets failed fast (under %s)", fast, reset, fastFail)
		}
		if fs, fr := float64(stalled)/150, float64(reset)/150; fs < 0.08 || fs > 0.34 || fr < 0.05 || fr > 0.30 {
			t.Errorf("stalled %.3f (want 0.08..0.34), reset %.3f (want 0.05..0.30)", fs, fr)
		}
	})
}

func TestSetValidates(t *testing.T) {
	t.Parallel()
	l, err := dblink.New(t.Context(), "validate", backends[0].addr, dblink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []dblink.Fault{
		{Kind: "jitter"},
		{Kind: dblink.KindPacketLoss},
		{Kind: dblink.KindPacketLoss, Percent: 101},
		{Kind: dblink.KindReset, Percent: -1},
		{Kind: dblink.KindBlackhole, Percent: 10},
		{Kind: dblink.KindLatency, Latency: -time.Second},
		{Kind: dblink.KindLatency, Latency: time.Second, Percent: 5},
	} {
		if err := l.Set([]dblink.Fault{f}); err == nil {
			t.Errorf("Set(%+v) accepted", f)
		}
	}
	if err := l.Set(nil); err != nil {
		t.Errorf("Set(nil): %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Set(nil); !errors.Is(err, dblink.ErrClosed) {
		t.Errorf("Set after Close: %v, want ErrClosed", err)
	}
	if _, err := dblink.New(t.Context(), "bad", "no-port", dblink.Options{}); err == nil {
		t.Error("New with a bad upstream address succeeded")
	}
}

// TestCloseEndsGoroutines is not parallel, so the goroutine count is ours.
func TestCloseEndsGoroutines(t *testing.T) {
	b := backends[0]
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := dblink.New(ctx, "leak", b.addr, dblink.Options{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	c, err := database.Open(ctx, linkURL(b, l))
	if err != nil {
		t.Fatal(err)
	}
	// Stalls, resets and latency in flight...
	set(t, l,
		dblink.Fault{Kind: dblink.KindPacketLoss, Percent: 40},
		dblink.Fault{Kind: dblink.KindReset, Percent: 20},
		dblink.Fault{Kind: dblink.KindLatency, Latency: 300 * time.Millisecond})
	done := make(chan struct{})
	go func() {
		defer close(done)
		calls(ctx, c, 16, 8)
	}()
	time.Sleep(time.Second)
	// ...when the link is closed (here by its context).
	cancel()
	<-done
	c.Close()
	if conn, err := net.DialTimeout("tcp", l.Addr(), time.Second); err == nil {
		conn.Close()
		t.Error("link still accepts connections after its context ended")
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want <= %d:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestResetSendsRST checks the client sees a real TCP reset, not an orderly
// close (pgx itself reports either as "conn closed").
func TestResetSendsRST(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, _ := newLink(t, b, 8)
		set(t, l, dblink.Fault{Kind: dblink.KindReset, Percent: 100})
		conn, err := net.DialTimeout("tcp", l.Addr(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		fe := pgproto3.NewFrontend(conn, conn)
		user, db := database.EmbeddedUser, database.EmbeddedDatabase
		if b.name == "postgres" {
			user, db = database.PostgresUser, database.PostgresDatabase
		}
		fe.Send(&pgproto3.StartupMessage{
			ProtocolVersion: pgproto3.ProtocolVersion30,
			Parameters:      map[string]string{"user": user, "database": db},
		})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		for {
			msg, err := fe.Receive()
			if err != nil {
				t.Fatalf("startup: %v", err)
			}
			if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
				break
			}
		}
		// The ping is not a call: it passes.
		fe.Send(&pgproto3.Query{String: "-- ping"})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		for {
			msg, err := fe.Receive()
			if err != nil {
				t.Fatalf("ping: %v", err)
			}
			if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
				break
			}
		}
		fe.Send(&pgproto3.Query{String: "INSERT INTO rides (zone, instance) VALUES ('a', 'b') RETURNING id"})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		_, err = conn.Read(make([]byte, 1))
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read after a reset roll: %v, want ECONNRESET", err)
		}
	})
}

// TestSetWhileBusy changes faults under load: nothing panics or wedges, and
// clearing them brings every call back.
func TestSetWhileBusy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c := newLink(t, b, 9)
		ctx := t.Context()
		sets := [][]dblink.Fault{
			{{Kind: dblink.KindBlackhole}},
			{{Kind: dblink.KindPacketLoss, Percent: 50}, {Kind: dblink.KindLatency, Latency: 20 * time.Millisecond, Jitter: 10 * time.Millisecond}},
			{{Kind: dblink.KindReset, Percent: 50}},
			nil,
			{{Kind: dblink.KindLatency, Latency: 50 * time.Millisecond}, {Kind: dblink.KindBlackhole}},
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(37 * time.Millisecond):
				}
				if err := l.Set(sets[i%len(sets)]); err != nil {
					t.Errorf("Set: %v", err)
					return
				}
			}
		})
		var rs []result
		for start := time.Now(); time.Since(start) < 3*time.Second; {
			rs = append(rs, calls(ctx, c, 16, database.MaxConns)...)
		}
		s := summarize(rs)
		close(stop)
		wg.Wait()
		t.Log("while changing faults:", s)
		set(t, l)
		s = summarize(calls(ctx, c, 20, 4))
		if len(s.failed) > 0 {
			t.Errorf("after clearing: %s; first error: %v", s, s.errs[0])
		}
	})
}
