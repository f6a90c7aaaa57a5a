package database_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/grayzone/grayzone/lab/database"
)

// backend is a database the app's client can talk to.
type backend struct {
	name string
	url  string
}

// backends starts the embedded store and, when its binaries exist, a real
// PostgreSQL; both are stopped when the test ends. Without the binaries a
// skipped "postgres" subtest says so.
func backends(t *testing.T) []backend {
	t.Helper()
	ctx := context.Background()
	emb, err := database.StartEmbedded(ctx)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() { _ = emb.Close() })
	out := []backend{{name: "embedded", url: emb.URL()}}
	if !database.PostgresAvailable() {
		t.Run("postgres", func(t *testing.T) {
			t.Skipf("no real PostgreSQL, tested against the embedded store only: %v", database.CheckPostgres())
		})
		return out
	}
	pg, err := database.StartPostgres(ctx, database.PostgresOptions{})
	if err != nil {
		t.Fatalf("StartPostgres: %v", err)
	}
	t.Cleanup(func() {
		if err := pg.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return append(out, backend{name: "postgres", url: pg.URL()})
}

func TestRidePay(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			// Migrate is idempotent, and safe when instances race to run it.
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for range 8 {
				wg.Go(func() { errs <- database.Migrate(ctx, b.url) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("Migrate: %v", err)
				}
			}
			c, err := database.Open(ctx, b.url)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer c.Close()
			var last int64
			for i := range 5 {
				id, err := c.Ride(ctx, "use2-az1", fmt.Sprintf("use2-az1-%d", i))
				if err != nil {
					t.Fatalf("Ride: %v", err)
				}
				if id <= last {
					t.Fatalf("Ride id %d after %d", id, last)
				}
				last = id
			}
			if id, err := c.Pay(ctx, "use2-az2", "o'brien", -1250); err != nil || id < 1 {
				t.Fatalf("Pay = %d, %v", id, err)
			}
			// Concurrent calls get distinct ids.
			ids := make(chan int64, 40)
			for i := range 40 {
				wg.Go(func() {
					id, err := c.Pay(ctx, "use2-az3", "use2-az3-1", int64(i))
					if err != nil {
						t.Errorf("Pay: %v", err)
					}
					ids <- id
				})
			}
			wg.Wait()
			close(ids)
			seen := map[int64]bool{}
			for id := range ids {
				if seen[id] {
					t.Errorf("duplicate id %d", id)
				}
				seen[id] = true
			}
		})
	}
}

func TestBeforeMigrate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			c, err := database.Open(ctx, b.url)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer c.Close()
			_, err = c.Ride(ctx, "z", "i")
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42P01" {
				t.Fatalf("Ride before Migrate: %v, want undefined_table (42P01)", err)
			}
		})
	}
}

func TestEmbeddedProtocol(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	emb, err := database.StartEmbedded(ctx)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	defer emb.Close()
	if err := database.Migrate(ctx, emb.URL()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}

	// sslmode=prefer asks for TLS first; the store says no and goes on.
	url := strings.Replace(emb.URL(), "sslmode=disable", "sslmode=prefer", 1)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect with sslmode=prefer: %v", err)
	}
	defer conn.Close(ctx)
	if got := conn.PgConn().ParameterStatus("standard_conforming_strings"); got != "on" {
		t.Errorf("standard_conforming_strings = %q", got)
	}
	if err := conn.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if _, err := conn.Exec(ctx, ""); err != nil {
		t.Errorf("empty query: %v", err)
	}
	var id int64
	if err := conn.QueryRow(ctx, database.InsertRide, "z", "i").Scan(&id); err != nil || id != 1 {
		t.Errorf("insert ride: id %d, %v", id, err)
	}
	// Anything else is refused with a clear error, and the connection lives on.
	_, err = conn.Exec(ctx, "SELECT 1")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "0A000" || !strings.Contains(pgErr.Message, "unsupported statement") {
		t.Errorf("SELECT 1: %v, want feature_not_supported", err)
	}
	_, err = conn.Exec(ctx, database.InsertPayment, "z", "i", "lots")
	if !errors.As(err, &pgErr) || pgErr.Code != "22P02" {
		t.Errorf("bad cents: %v, want 22P02", err)
	}
	// The extended protocol is refused, then the connection is usable again.
	_, err = conn.Exec(ctx, database.InsertRide, pgx.QueryExecModeExec, "z", "i")
	if !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
		t.Errorf("extended protocol: %v, want feature_not_supported", err)
	}
	if err := conn.QueryRow(ctx, database.InsertRide, "z", "i").Scan(&id); err != nil || id != 2 {
		t.Errorf("insert ride after refusal: id %d, %v", id, err)
	}
	if got := emb.Count("rides"); got != 2 {
		t.Errorf("Count(rides) = %d, want 2", got)
	}
}

func TestEmbeddedCloseEndsGoroutines(t *testing.T) {
	ctx := t.Context()
	before := runtime.NumGoroutine()
	emb, err := database.StartEmbedded(ctx)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	if err := database.Migrate(ctx, emb.URL()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	c, err := database.Open(ctx, emb.URL())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := c.Ride(ctx, "z", "i"); err != nil {
				t.Errorf("Ride: %v", err)
			}
		})
	}
	wg.Wait()
	// Close with the pool's connections still open.
	if err := emb.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := c.Ride(ctx, "z", "i"); err == nil {
		t.Error("Ride after Close succeeded")
	}
	c.Close()
	waitGoroutines(t, before)
}

func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want <= %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPostgresStopRemovesFiles(t *testing.T) {
	t.Parallel()
	if err := database.CheckPostgres(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	pg, err := database.StartPostgres(ctx, database.PostgresOptions{})
	if err != nil {
		t.Fatalf("StartPostgres: %v", err)
	}
	t.Logf("cluster ready in %v at %s", time.Since(start).Round(time.Millisecond), pg.Addr())
	if err := database.Migrate(ctx, pg.URL()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	dir := clusterDir(t, pg)
	// Cancelling the start context stops the server and removes the files.
	cancel()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, statErr := os.Stat(dir)
		if os.IsNotExist(statErr) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still there after ctx cancel", dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := pg.Stop(); err != nil {
		t.Errorf("Stop after cancel: %v", err)
	}
	connCtx, connCancel := context.WithTimeout(context.Background(), time.Second)
	defer connCancel()
	if conn, err := pgconn.Connect(connCtx, pg.URL()); err == nil {
		conn.Close(connCtx)
		t.Fatal("server still accepts connections after Stop")
	}
}

// clusterDir finds the cluster's temp dir through its unix socket directory
// (the server was started with -k inside it).
func clusterDir(t *testing.T, pg *database.Cluster) string {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var dir string
	if err := conn.QueryRow(ctx, "SHOW unix_socket_directories").Scan(&dir); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dir, "grayzone-pg-") {
		t.Fatalf("unexpected socket dir %q", dir)
	}
	return dir
}

func TestStartPostgresSaysWhatIsMissing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := database.StartPostgres(t.Context(), database.PostgresOptions{BinDir: dir})
	if err == nil || !strings.Contains(err.Error(), "initdb and postgres not found in "+dir) {
		t.Fatalf("StartPostgres with an empty BinDir: %v", err)
	}
}
