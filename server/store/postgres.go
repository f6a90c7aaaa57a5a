package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// IsURL reports whether a store setting names a PostgreSQL database rather
// than a data directory.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// OpenPostgres opens the PostgreSQL database at url (postgres://...) and
// brings its schema up to date. Replicas of grayzone serve share it.
func OpenPostgres(ctx context.Context, dsn string) (*DB, error) {
	shown := dsn
	if u, err := url.Parse(dsn); err == nil {
		shown = u.Redacted()
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", shown, err)
	}
	// A handful of connections: one leader's writes, reads for the API.
	db.SetMaxOpenConns(8)
	db.SetConnMaxIdleTime(time.Minute)
	d := &DB{db: db, path: shown, dialect: postgresDialect}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", shown, err)
	}
	if err := d.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

// OpenStore opens the store a serve configuration names: a postgres:// URL,
// or else a data directory for SQLite.
func OpenStore(ctx context.Context, where string) (*DB, error) {
	if IsURL(where) {
		return OpenPostgres(ctx, where)
	}
	return Open(ctx, where)
}

var postgresDialect = dialect{
	name:       "postgres",
	migrations: postgresMigrations,
	dollar:     true,
	// Any constant: replicas opening one database take turns to migrate it.
	lock: "SELECT pg_advisory_xact_lock(7238142)",
}

// postgresMigrations mirror migrations (same versions, same columns and
// meaning): times are the same fixed-width RFC 3339 text, so both backends
// share every query; the audit log's seq comes from an identity column and
// triggers keep the log append-only.
var postgresMigrations = []string{
	`` + shiftsDDL + `

	CREATE TABLE audit (
		seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		at       TEXT NOT NULL,
		kind     TEXT NOT NULL,
		resource TEXT NOT NULL,
		zone     TEXT NOT NULL,
		actor    TEXT NOT NULL,
		message  TEXT NOT NULL,
		detail   TEXT CHECK (detail IS NULL OR detail::jsonb IS NOT NULL)
	);
	CREATE INDEX audit_by_resource ON audit (resource, seq);
	CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$;
	CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON audit
		FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

	` + practiceDDL + `

	CREATE TABLE state (
		key        TEXT PRIMARY KEY,
		value      BYTEA NOT NULL,
		updated_at TEXT NOT NULL
	);`,
	// 2: the leader lease; its expiry is the database's clock, which every
	// replica reads the same.
	`CREATE TABLE leader_lease (
		name       TEXT PRIMARY KEY,
		holder     TEXT NOT NULL,
		address    TEXT NOT NULL,
		epoch      BIGINT NOT NULL,
		expires_at TIMESTAMPTZ NOT NULL
	);`,
	// 3: the ARC zonal shift carrying a shift (front door type arc).
	`ALTER TABLE shifts ADD COLUMN arc_zonal_shift_id TEXT NOT NULL DEFAULT '';`,
	// 4: the notification outbox (outbox.go).
	postgresOutboxDDL,
	// 5: per-resource leases and the replicas' membership (shards.go).
	strings.ReplaceAll(shardsDDL, "TIMESTAMP", "TIMESTAMPTZ"),
	// 6: shift versions (see shiftVersionDDL).
	shiftVersionDDL,
}
