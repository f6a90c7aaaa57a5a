package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/grayzone/grayzone/notify"
	"github.com/grayzone/grayzone/notify/event"
)

// The outbox holds each event once per endpoint until it is delivered or
// given up. Rows are written with the audit entry they belong to (AppendEvent)
// and only marked afterwards; (event_id, endpoint) is unique, so an event is
// never queued twice for one endpoint.
const outboxColumns = `
		event_id     TEXT NOT NULL,
		endpoint     TEXT NOT NULL,
		created_at   TEXT NOT NULL,
		event        TEXT NOT NULL,
		attempts     INTEGER NOT NULL DEFAULT 0,
		next_at      TEXT NOT NULL,
		last_error   TEXT NOT NULL DEFAULT '',
		delivered_at TEXT,
		failed_at    TEXT,
		UNIQUE (event_id, endpoint)
	);
	CREATE INDEX outbox_pending ON outbox (endpoint, seq) WHERE delivered_at IS NULL AND failed_at IS NULL;`

const (
	sqliteOutboxDDL   = `CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,` + outboxColumns
	postgresOutboxDDL = `CREATE TABLE outbox (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,` + outboxColumns
)

// Queued is an event and the endpoints it goes to.
type Queued struct {
	Event     *event.Event
	Endpoints []string
}

// AppendEvents adds an audit entry and, in the same transaction, queues each
// event (stamped with the entry's Seq) for each of its endpoints: an event
// is queued exactly when its audit entry is written.
func (d *DB) AppendEvents(ctx context.Context, e AuditEntry, evs []Queued) (AuditEntry, error) {
	e, detail, err := prepareAudit(e)
	if err != nil {
		return AuditEntry{}, err
	}
	err = d.writeTx(ctx, e.Resource, func(q querier) error {
		if err := d.insertAudit(ctx, q, &e, detail); err != nil {
			return err
		}
		now := formatTime(time.Now())
		for _, qe := range evs {
			qe.Event.AuditSeq = e.Seq
			data, err := json.Marshal(qe.Event)
			if err != nil {
				return err
			}
			for _, ep := range qe.Endpoints {
				if _, err := q.ExecContext(ctx, d.q(`INSERT INTO outbox (event_id, endpoint, created_at, event, next_at)
					VALUES (?, ?, ?, ?, ?)`), qe.Event.ID, ep, now, string(data), now); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return AuditEntry{}, fmt.Errorf("store: append audit %s with its events: %w", e.Kind, err)
	}
	return e, nil
}

// writeTx is write, always in a transaction (write runs an unfenced f
// straight on the pool, where two statements are not atomic).
func (d *DB) writeTx(ctx context.Context, resource string, f func(q querier) error) error {
	if _, sharded := d.resourceFence(resource); sharded || d.fence.Load() != 0 {
		return d.writeFor(ctx, resource, f) // fenced: already one transaction
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// Outbox is the store as the notify Dispatcher's queue.
func (d *DB) Outbox() notify.Outbox { return outbox{d} }

type outbox struct{ d *DB }

func (o outbox) Pending(ctx context.Context, endpoint string, limit int) ([]notify.Item, error) {
	d := o.d
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT seq, event, created_at, attempts, next_at FROM outbox
		WHERE endpoint = ? AND delivered_at IS NULL AND failed_at IS NULL ORDER BY seq LIMIT ?`), endpoint, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: outbox %s: %w", endpoint, err)
	}
	defer rows.Close()
	var out []notify.Item
	for rows.Next() {
		it := notify.Item{Endpoint: endpoint}
		var data, created, next string
		if err := rows.Scan(&it.Seq, &data, &created, &it.Attempts, &next); err != nil {
			return nil, fmt.Errorf("store: outbox %s: %w", endpoint, err)
		}
		if err := json.Unmarshal([]byte(data), &it.Event); err != nil {
			return nil, fmt.Errorf("store: outbox item %d: %w", it.Seq, err)
		}
		var tp timeParser
		it.Created, it.NextAt = tp.parse(created), tp.parse(next)
		if tp.err != nil {
			return nil, fmt.Errorf("store: outbox item %d: %w", it.Seq, tp.err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: outbox %s: %w", endpoint, err)
	}
	return out, nil
}

func (o outbox) Delivered(ctx context.Context, seq int64, at time.Time) error {
	return o.mark(ctx, seq, "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1 WHERE seq = ?", formatTime(at), seq)
}

func (o outbox) Retry(ctx context.Context, seq int64, attempts int, next time.Time, lastErr string) error {
	return o.mark(ctx, seq, "UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE seq = ?", attempts, formatTime(next), lastErr, seq)
}

func (o outbox) GiveUp(ctx context.Context, seq int64, at time.Time, lastErr string) error {
	return o.mark(ctx, seq, "UPDATE outbox SET failed_at = ?, attempts = attempts + 1, last_error = ? WHERE seq = ?", formatTime(at), lastErr, seq)
}

func (o outbox) mark(ctx context.Context, seq int64, query string, args ...any) error {
	if err := o.d.exec(ctx, query, args...); err != nil {
		return fmt.Errorf("store: outbox item %d: %w", seq, err)
	}
	return nil
}

// OutboxStat is one endpoint's outbox: what waits, since when, and what
// was delivered or given up (all time, as long as rows are kept).
type OutboxStat struct {
	Endpoint      string     `json:"endpoint"`
	Pending       int64      `json:"pending"`
	OldestPending *time.Time `json:"oldest_pending,omitempty"`
	Delivered     int64      `json:"delivered"`
	Failed        int64      `json:"failed"` // given up
	LastError     string     `json:"last_error,omitempty"`
}

// OutboxStats summarises the outbox per endpoint, by endpoint name.
func (d *DB) OutboxStats(ctx context.Context) ([]OutboxStat, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT endpoint,
		SUM(CASE WHEN delivered_at IS NULL AND failed_at IS NULL THEN 1 ELSE 0 END),
		MIN(CASE WHEN delivered_at IS NULL AND failed_at IS NULL THEN created_at END),
		SUM(CASE WHEN delivered_at IS NOT NULL THEN 1 ELSE 0 END),
		SUM(CASE WHEN failed_at IS NOT NULL THEN 1 ELSE 0 END),
		MAX(last_error)
		FROM outbox GROUP BY endpoint ORDER BY endpoint`)
	if err != nil {
		return nil, fmt.Errorf("store: outbox stats: %w", err)
	}
	defer rows.Close()
	var out []OutboxStat
	for rows.Next() {
		var s OutboxStat
		var oldest sql.NullString
		if err := rows.Scan(&s.Endpoint, &s.Pending, &oldest, &s.Delivered, &s.Failed, &s.LastError); err != nil {
			return nil, fmt.Errorf("store: outbox stats: %w", err)
		}
		var tp timeParser
		if s.OldestPending = tp.parseNull(oldest); tp.err != nil {
			return nil, fmt.Errorf("store: outbox stats: %w", tp.err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: outbox stats: %w", err)
	}
	return out, nil
}

// PruneOutbox deletes rows delivered or given up before before, so the
// table holds what waits and a recent history.
func (d *DB) PruneOutbox(ctx context.Context, before time.Time) error {
	b := formatTime(before)
	if err := d.exec(ctx, `DELETE FROM outbox WHERE (delivered_at IS NOT NULL AND delivered_at < ?)
		OR (failed_at IS NOT NULL AND failed_at < ?)`, b, b); err != nil {
		return fmt.Errorf("store: prune outbox: %w", err)
	}
	return nil
}
