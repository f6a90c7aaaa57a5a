// Package store keeps grayzone's durable state: shifts, the append-only audit
// log, practice runs, opaque state blobs (each resource's runbook snapshot)
// that let a restarted controller resume a half-done step, and the leader
// lease that lets two or more replicas share it.
//
// Two backends sit behind the one DB type, with the same schema semantics and
// the same tests: SQLite (the embedded default, one file under the data
// directory; modernc.org/sqlite, pure Go, in WAL mode with synchronous=FULL)
// and PostgreSQL (a postgres:// URL; several replicas share it). Every call is
// one transaction, and once it returns nil the write is durable.
//
// Writes can be fenced (SetFence): they then commit only while the leader
// lease's epoch is the one given, so a deposed leader's late write fails.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/grayzone/grayzone/engine/shift"
)

// FileName is the database file inside the state directory.
const FileName = "grayzone.db"

// Query limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// busyTimeout is how long a writer waits for another (e.g. a CLI reading the
// same file) before failing with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// timeLayout is RFC 3339 with a fixed nine-digit fraction, so stored times
// sort correctly as text and stay readable in the sqlite3 shell.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// DB is the state database. Safe for concurrent use.
type DB struct {
	db      *sql.DB
	path    string // the SQLite file, or the PostgreSQL URL without its password
	dialect dialect
	fence   atomic.Uint64 // 0: writes unfenced; else the epoch they require
	// shards fences each resource's writes by its own lease (shards.go).
	shards shardFences
}

var _ shift.Store = (*DB)(nil)

// Open creates or opens DIR/grayzone.db and brings its schema up to date.
func Open(ctx context.Context, dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("store: create state dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	// The driver splits the DSN at the first '?', so such a path would be misread.
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("store: state dir %q must not contain '?'", dir)
	}
	// The pragmas are per connection, so they go in the DSN and apply to every
	// connection of the pool. _txlock=immediate takes the write lock at BEGIN,
	// so two read-then-write transactions wait on busy_timeout instead of
	// failing with SQLITE_BUSY on lock upgrade.
	dsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_journal_mode=WAL&_synchronous=FULL&_txlock=immediate",
		path, busyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	d := &DB{db: db, path: path, dialect: sqliteDialect}
	if err := d.check(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := d.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

// check verifies the durability settings took: a filesystem that cannot do
// WAL would otherwise silently fall back to another journal mode.
func (d *DB) check(ctx context.Context) error {
	var mode string
	var sync int
	if err := d.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("store: open %s: %w", d.path, err)
	}
	if err := d.db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return fmt.Errorf("store: open %s: %w", d.path, err)
	}
	if !strings.EqualFold(mode, "wal") || sync != 2 {
		return fmt.Errorf("store: open %s: journal_mode=%s synchronous=%d, want wal and 2 (FULL)", d.path, mode, sync)
	}
	return nil
}

// Path is the database file's path.
func (d *DB) Path() string { return d.path }

// Close closes the database.
func (d *DB) Close() error {
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", d.path, err)
	}
	return nil
}

// The tables both backends declare alike (see postgresMigrations). The text
// of a shipped migration must not change: these are spliced in verbatim.
const (
	shiftsDDL = `CREATE TABLE shifts (
		id         TEXT PRIMARY KEY,
		resource   TEXT NOT NULL,
		away_from  TEXT NOT NULL,
		status     TEXT NOT NULL,
		origin     TEXT NOT NULL,
		comment    TEXT NOT NULL,
		started_by TEXT NOT NULL,
		reason     TEXT NOT NULL,
		started_at TEXT NOT NULL,
		expires_at TEXT NOT NULL,
		updated_at TEXT NOT NULL,
		updated_by TEXT NOT NULL,
		ended_at   TEXT,
		ended_by   TEXT NOT NULL
	);
	CREATE INDEX shifts_by_resource ON shifts (resource, started_at);`
	// shiftVersionDDL numbers every save of a shift (shifts.version) from
	// one counter row, taken in the saving transaction: the row lock makes
	// savers take numbers in the order they commit, so a reader that has seen
	// version v has seen every save numbered below it (see LoadShiftsSince).
	// Shifts saved before it have version 0.
	shiftVersionDDL = `CREATE TABLE shift_version (
		id      INTEGER PRIMARY KEY,
		version BIGINT NOT NULL
	);
	INSERT INTO shift_version (id, version) VALUES (1, 0);
	ALTER TABLE shifts ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
	CREATE INDEX shifts_by_version ON shifts (version);`
	practiceDDL = `CREATE TABLE practice_runs (
		id         TEXT PRIMARY KEY,
		resource   TEXT NOT NULL,
		zone       TEXT NOT NULL,
		shift_id   TEXT NOT NULL,
		started_at TEXT NOT NULL,
		ended_at   TEXT,
		outcome    TEXT NOT NULL,
		reason     TEXT NOT NULL
	);
	CREATE INDEX practice_by_resource ON practice_runs (resource, started_at);`
)

// migrations are SQLite's, applied in order; migrations[i] brings the schema
// to version i+1. Append only: never edit one that has shipped. PostgreSQL's
// (postgres.go) have the same versions and meaning.
var migrations = []string{
	`` + shiftsDDL + `

	-- AUTOINCREMENT: a seq is never reused, so readers can page with After.
	CREATE TABLE audit (
		seq      INTEGER PRIMARY KEY AUTOINCREMENT,
		at       TEXT NOT NULL,
		kind     TEXT NOT NULL,
		resource TEXT NOT NULL,
		zone     TEXT NOT NULL,
		actor    TEXT NOT NULL,
		message  TEXT NOT NULL,
		detail   TEXT CHECK (detail IS NULL OR json_valid(detail))
	);
	CREATE INDEX audit_by_resource ON audit (resource, seq);
	CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
		BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
	CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
		BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;

	` + practiceDDL + `

	CREATE TABLE state (
		key        TEXT PRIMARY KEY,
		value      BLOB NOT NULL,
		updated_at TEXT NOT NULL
	);`,
	// 2: the leader lease (see lease.go).
	`CREATE TABLE leader_lease (
		name       TEXT PRIMARY KEY,
		holder     TEXT NOT NULL,
		address    TEXT NOT NULL,
		epoch      INTEGER NOT NULL,
		expires_at TEXT NOT NULL
	);`,
	// 3: the ARC zonal shift carrying a shift (front door type arc).
	`ALTER TABLE shifts ADD COLUMN arc_zonal_shift_id TEXT NOT NULL DEFAULT '';`,
	// 4: the notification outbox (outbox.go).
	sqliteOutboxDDL,
	// 5: per-resource leases and the replicas' membership (shards.go).
	strings.ReplaceAll(shardsDDL, "TIMESTAMP", "TEXT"),
	// 6: shift versions, so followers read only the shifts that changed.
	shiftVersionDDL,
}

// migrate applies the missing migrations in one transaction, so concurrent
// opens (serve and a CLI) cannot both apply one, and a crash leaves the
// schema at a whole version.
func (d *DB) migrate(ctx context.Context) error {
	return d.tx(ctx, "migrate", func(tx *sql.Tx) error {
		if d.dialect.lock != "" {
			if _, err := tx.ExecContext(ctx, d.dialect.lock); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			version    INTEGER PRIMARY KEY,
			applied_at TEXT NOT NULL
		)`); err != nil {
			return err
		}
		var v int
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_version").Scan(&v); err != nil {
			return err
		}
		migs := d.dialect.migrations
		if v > len(migs) {
			return fmt.Errorf("schema version %d is newer than this binary's %d: upgrade grayzone", v, len(migs))
		}
		for i := v; i < len(migs); i++ {
			if _, err := tx.ExecContext(ctx, migs[i]); err != nil {
				return fmt.Errorf("to version %d: %w", i+1, err)
			}
			if _, err := tx.ExecContext(ctx, d.q("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)"),
				i+1, formatTime(time.Now())); err != nil {
				return fmt.Errorf("to version %d: %w", i+1, err)
			}
		}
		return nil
	})
}

// SchemaVersion is the database's schema version.
func (d *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := d.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}

// IntegrityCheck runs PRAGMA integrity_check and returns an error unless the
// database is sound.
func (d *DB) IntegrityCheck(ctx context.Context) error {
	if d.dialect.name != "sqlite" {
		return nil // PostgreSQL checks its own pages (and has no such pragma)
	}
	rows, err := d.db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("store: integrity check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return fmt.Errorf("store: integrity check: %w", err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: integrity check: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("store: integrity check of %s failed: %s", d.path, strings.Join(problems, "; "))
	}
	return nil
}

func (d *DB) tx(ctx context.Context, what string, f func(*sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %s: begin: %w", what, err)
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback() // the error that matters is f's
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: %s: commit: %w", what, err)
	}
	return nil
}

// ---- shifts ----

// SaveShift implements shift.Store: it inserts or replaces the shift, under
// the next shift version.
func (d *DB) SaveShift(ctx context.Context, s shift.Shift) error {
	if s.ID == "" {
		return errors.New("store: save shift: empty id")
	}
	err := d.fencedWrite(ctx, s.Resource, true, func(q querier) error {
		var version int64
		if err := q.QueryRowContext(ctx, d.q(`UPDATE shift_version SET version = version + 1 WHERE id = 1 RETURNING version`)).Scan(&version); err != nil {
			return fmt.Errorf("next version: %w", err)
		}
		_, err := q.ExecContext(ctx, d.q(`INSERT INTO shifts
		(id, resource, away_from, status, origin, comment, started_by, reason,
		 started_at, expires_at, updated_at, updated_by, ended_at, ended_by, arc_zonal_shift_id, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
		 resource = excluded.resource, away_from = excluded.away_from, status = excluded.status,
		 origin = excluded.origin, comment = excluded.comment, started_by = excluded.started_by,
		 reason = excluded.reason, started_at = excluded.started_at, expires_at = excluded.expires_at,
		 updated_at = excluded.updated_at, updated_by = excluded.updated_by,
		 ended_at = excluded.ended_at, ended_by = excluded.ended_by,
		 arc_zonal_shift_id = excluded.arc_zonal_shift_id, version = excluded.version`),
			s.ID, s.Resource, s.AwayFrom, string(s.Status), string(s.Origin), s.Comment, s.StartedBy, s.Reason,
			formatTime(s.StartedAt), formatTime(s.ExpiresAt), formatTime(s.UpdatedAt), s.UpdatedBy,
			formatTimePtr(s.EndedAt), s.EndedBy, s.ARCZonalShiftID, version)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: save shift %s: %w", s.ID, err)
	}
	return nil
}

// LoadShifts implements shift.Store, oldest first.
func (d *DB) LoadShifts(ctx context.Context) ([]shift.Shift, error) {
	out, _, err := d.loadShifts(ctx, `SELECT id, resource, away_from, status, origin, comment,
		started_by, reason, started_at, expires_at, updated_at, updated_by, ended_at, ended_by, arc_zonal_shift_id, version
		FROM shifts ORDER BY started_at, id`)
	return out, err
}

// LoadShiftsSince implements shift.SinceStore: the shifts saved under a
// version above after, and the highest version among them (after when
// none). A follower passes the version it last got, and so reads only what
// changed since; 0 reads them all.
func (d *DB) LoadShiftsSince(ctx context.Context, after uint64) ([]shift.Shift, uint64, error) {
	out, top, err := d.loadShifts(ctx, `SELECT id, resource, away_from, status, origin, comment,
		started_by, reason, started_at, expires_at, updated_at, updated_by, ended_at, ended_by, arc_zonal_shift_id, version
		FROM shifts WHERE version > ? ORDER BY version`, int64(after))
	return out, max(top, after), err
}

// loadShifts reads the shifts query selects, and their highest version.
func (d *DB) loadShifts(ctx context.Context, query string, args ...any) ([]shift.Shift, uint64, error) {
	rows, err := d.db.QueryContext(ctx, d.q(query), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("store: load shifts: %w", err)
	}
	defer rows.Close()
	var out []shift.Shift
	var top uint64
	for rows.Next() {
		var s shift.Shift
		var status, origin, started, expires, updated string
		var ended sql.NullString
		var version int64
		if err := rows.Scan(&s.ID, &s.Resource, &s.AwayFrom, &status, &origin, &s.Comment,
			&s.StartedBy, &s.Reason, &started, &expires, &updated, &s.UpdatedBy, &ended, &s.EndedBy, &s.ARCZonalShiftID, &version); err != nil {
			return nil, 0, fmt.Errorf("store: load shifts: %w", err)
		}
		s.Status, s.Origin = shift.Status(status), shift.Origin(origin)
		var tp timeParser
		s.StartedAt, s.ExpiresAt, s.UpdatedAt = tp.parse(started), tp.parse(expires), tp.parse(updated)
		s.EndedAt = tp.parseNull(ended)
		if tp.err != nil {
			return nil, 0, fmt.Errorf("store: load shift %s: %w", s.ID, tp.err)
		}
		top = max(top, uint64(version))
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("store: load shifts: %w", err)
	}
	return out, top, nil
}

// ---- audit ----

// AuditEntry is one record of the audit log.
type AuditEntry struct {
	Seq      int64           `json:"seq"` // assigned by Append, strictly increasing
	At       time.Time       `json:"at"`
	Kind     string          `json:"kind"` // decision, shift_started, action, action_failed, practice, config, ...
	Resource string          `json:"resource,omitempty"`
	Zone     string          `json:"zone,omitempty"`
	Actor    string          `json:"actor,omitempty"`
	Message  string          `json:"message"`
	Detail   json.RawMessage `json:"detail,omitempty"`
}

// AuditQuery selects audit entries; zero fields match everything.
type AuditQuery struct {
	Resource string
	After    int64 // only entries with Seq > After (tailing)
	Before   int64 // only entries with Seq < Before (paging back); 0 = no bound
	Limit    int   // 0 means DefaultLimit; capped at MaxLimit
}

// Append adds an entry to the audit log and returns it with its Seq (and At,
// if it was zero, set to now). There is no way to change or remove an entry:
// triggers reject UPDATE and DELETE on the table.
func (d *DB) Append(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	e, detail, err := prepareAudit(e)
	if err != nil {
		return AuditEntry{}, err
	}
	if err := d.writeFor(ctx, e.Resource, func(q querier) error { return d.insertAudit(ctx, q, &e, detail) }); err != nil {
		return AuditEntry{}, fmt.Errorf("store: append audit %s: %w", e.Kind, err)
	}
	return e, nil
}

// prepareAudit checks an entry and fills its defaults; detail is the
// column's value (nil for NULL).
func prepareAudit(e AuditEntry) (AuditEntry, any, error) {
	if e.Kind == "" {
		return AuditEntry{}, nil, errors.New("store: append audit: empty kind")
	}
	var detail any // NULL when absent
	if len(e.Detail) > 0 {
		if !json.Valid(e.Detail) {
			return AuditEntry{}, nil, fmt.Errorf("store: append audit %s: detail is not valid JSON", e.Kind)
		}
		detail = string(e.Detail)
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.At = e.At.UTC()
	return e, detail, nil
}

// insertAudit writes a prepared entry and sets its Seq.
func (d *DB) insertAudit(ctx context.Context, q querier, e *AuditEntry, detail any) error {
	return q.QueryRowContext(ctx, d.q(`INSERT INTO audit (at, kind, resource, zone, actor, message, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq`),
		formatTime(e.At), e.Kind, e.Resource, e.Zone, e.Actor, e.Message, detail).Scan(&e.Seq)
}

// Audit returns the entries matching q, newest (highest Seq) first.
func (d *DB) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	var where []string
	var args []any
	if q.Resource != "" {
		where, args = append(where, "resource = ?"), append(args, q.Resource)
	}
	if q.After > 0 {
		where, args = append(where, "seq > ?"), append(args, q.After)
	}
	if q.Before > 0 {
		where, args = append(where, "seq < ?"), append(args, q.Before)
	}
	query := "SELECT seq, at, kind, resource, zone, actor, message, detail FROM audit"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY seq DESC LIMIT ?"
	args = append(args, clampLimit(q.Limit))
	rows, err := d.db.QueryContext(ctx, d.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at string
		var detail sql.NullString
		if err := rows.Scan(&e.Seq, &at, &e.Kind, &e.Resource, &e.Zone, &e.Actor, &e.Message, &detail); err != nil {
			return nil, fmt.Errorf("store: audit: %w", err)
		}
		var tp timeParser
		if e.At = tp.parse(at); tp.err != nil {
			return nil, fmt.Errorf("store: audit entry %d: %w", e.Seq, tp.err)
		}
		if detail.Valid {
			e.Detail = json.RawMessage(detail.String)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: audit: %w", err)
	}
	return out, nil
}

// ---- practice runs ----

// Practice run outcomes; "" while the run is in progress.
const (
	PracticeSucceeded           = "SUCCEEDED"
	PracticeFailed              = "FAILED"
	PracticeInterrupted         = "INTERRUPTED"
	PracticeCapacityCheckFailed = "CAPACITY_CHECK_FAILED"
)

// PracticeRun is one practice shift of a resource's zone.
type PracticeRun struct {
	ID        string     `json:"id"`
	Resource  string     `json:"resource"`
	Zone      string     `json:"zone"`
	ShiftID   string     `json:"shift_id,omitempty"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	Outcome   string     `json:"outcome"`
	Reason    string     `json:"reason,omitempty"`
}

// SavePractice inserts or replaces the run with p.ID (a run is saved when it
// starts and again when it ends).
func (d *DB) SavePractice(ctx context.Context, p PracticeRun) error {
	if p.ID == "" {
		return errors.New("store: save practice run: empty id")
	}
	err := d.execFor(ctx, p.Resource, `INSERT INTO practice_runs
		(id, resource, zone, shift_id, started_at, ended_at, outcome, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
		 resource = excluded.resource, zone = excluded.zone, shift_id = excluded.shift_id,
		 started_at = excluded.started_at, ended_at = excluded.ended_at,
		 outcome = excluded.outcome, reason = excluded.reason`,
		p.ID, p.Resource, p.Zone, p.ShiftID, formatTime(p.StartedAt), formatTimePtr(p.EndedAt), p.Outcome, p.Reason)
	if err != nil {
		return fmt.Errorf("store: save practice run %s: %w", p.ID, err)
	}
	return nil
}

// Practices returns a resource's practice runs ("" for all), newest first.
// limit 0 means DefaultLimit; it is capped at MaxLimit.
func (d *DB) Practices(ctx context.Context, resource string, limit int) ([]PracticeRun, error) {
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT id, resource, zone, shift_id, started_at, ended_at, outcome, reason
		FROM practice_runs WHERE ? = '' OR resource = ?
		ORDER BY started_at DESC, id DESC LIMIT ?`), resource, resource, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: practice runs: %w", err)
	}
	defer rows.Close()
	var out []PracticeRun
	for rows.Next() {
		var p PracticeRun
		var started string
		var ended sql.NullString
		if err := rows.Scan(&p.ID, &p.Resource, &p.Zone, &p.ShiftID, &started, &ended, &p.Outcome, &p.Reason); err != nil {
			return nil, fmt.Errorf("store: practice runs: %w", err)
		}
		var tp timeParser
		p.StartedAt, p.EndedAt = tp.parse(started), tp.parseNull(ended)
		if tp.err != nil {
			return nil, fmt.Errorf("store: practice run %s: %w", p.ID, tp.err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: practice runs: %w", err)
	}
	return out, nil
}

// ---- state blobs ----

// PutState stores value under key, replacing any previous value, in one
// transaction.
func (d *DB) PutState(ctx context.Context, key string, value []byte) error {
	if key == "" {
		return errors.New("store: put state: empty key")
	}
	if value == nil {
		value = []byte{} // the column is NOT NULL; nil and empty mean the same here
	}
	err := d.execFor(ctx, resourceOfKey(key), `INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		key, value, formatTime(time.Now()))
	if err != nil {
		return fmt.Errorf("store: put state %q: %w", key, err)
	}
	return nil
}

// GetStates returns the values stored under keys (those that have one), in
// one query per thousand keys.
func (d *DB) GetStates(ctx context.Context, keys []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(keys))
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 1000)]
		keys = keys[len(batch):]
		args := make([]any, len(batch))
		for i, k := range batch {
			args[i] = k
		}
		rows, err := d.db.QueryContext(ctx, d.q("SELECT key, value FROM state WHERE key IN (?"+strings.Repeat(", ?", len(batch)-1)+")"), args...)
		if err != nil {
			return nil, fmt.Errorf("store: get states: %w", err)
		}
		for rows.Next() {
			var k string
			var v []byte
			if err := rows.Scan(&k, &v); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: get states: %w", err)
			}
			out[k] = v
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("store: get states: %w", err)
		}
	}
	return out, nil
}

// GetState returns the value stored under key, and whether there is one.
func (d *DB) GetState(ctx context.Context, key string) ([]byte, bool, error) {
	var v []byte
	err := d.db.QueryRowContext(ctx, d.q("SELECT value FROM state WHERE key = ?"), key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: get state %q: %w", key, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, true, nil
}

// ---- helpers ----

func clampLimit(n int) int {
	if n <= 0 {
		return DefaultLimit
	}
	return min(n, MaxLimit)
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func formatTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return formatTime(*t)
}

// timeParser parses stored times, keeping the first error, so a row's
// several times read as plain assignments.
type timeParser struct{ err error }

func (p *timeParser) parse(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("bad stored time %q: %w", s, err)
	}
	return t.UTC()
}

func (p *timeParser) parseNull(s sql.NullString) *time.Time {
	if !s.Valid {
		return nil
	}
	t := p.parse(s.String)
	return &t
}
