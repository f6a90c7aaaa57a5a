package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/grayzone/grayzone/lab/database"
)

// The store's behaviour tests run against every backend: SQLite always,
// PostgreSQL in a throwaway cluster (lab/database) when its server binaries
// are installed. Set GRAYZONE_TEST_POSTGRES=require to fail instead of skip
// without them.

// backend opens a fresh, empty store; reopen opens the same one again.
type backend struct {
	name string
	new  func(t *testing.T) (reopen func(t *testing.T) *DB)
}

var (
	pgOnce    sync.Once
	pgCluster *database.Cluster
	pgErr     error
	pgDBs     atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pgCluster != nil {
		_ = pgCluster.Stop()
	}
	os.Exit(code)
}

// postgresURL returns the URL of a new, empty database in the package's
// throwaway cluster, started on first use.
func postgresURL(t *testing.T) string {
	t.Helper()
	pgOnce.Do(func() {
		if pgErr = database.CheckPostgres(); pgErr == nil {
			pgCluster, pgErr = database.StartPostgres(context.Background(), database.PostgresOptions{})
		}
	})
	if pgErr != nil {
		if os.Getenv("GRAYZONE_TEST_POSTGRES") == "require" {
			t.Fatalf("postgresql: %v", pgErr)
		}
		t.Skipf("postgresql not available: %v", pgErr)
	}
	name := fmt.Sprintf("store_%d", pgDBs.Add(1))
	admin, err := sql.Open("pgx", pgCluster.URL())
	must(t, err)
	defer admin.Close()
	_, err = admin.ExecContext(context.Background(), "CREATE DATABASE "+name)
	must(t, err)
	return strings.Replace(pgCluster.URL(), "/"+database.PostgresDatabase+"?", "/"+name+"?", 1)
}

var backends = []backend{
	{"sqlite", func(t *testing.T) func(t *testing.T) *DB {
		dir := t.TempDir()
		return func(t *testing.T) *DB { return open(t, dir) }
	}},
	{"postgres", func(t *testing.T) func(t *testing.T) *DB {
		url := postgresURL(t)
		return func(t *testing.T) *DB {
			d, err := OpenStore(context.Background(), url)
			must(t, err)
			t.Cleanup(func() { d.Close() })
			return d
		}
	}},
}

// eachBackend runs test once per backend, as subtests.
func eachBackend(t *testing.T, test func(t *testing.T, reopen func(t *testing.T) *DB)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.new(t)) })
	}
}
