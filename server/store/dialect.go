package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// dialect is what differs between the backends; the queries are written once,
// with ? placeholders.
type dialect struct {
	name       string
	migrations []string
	// lock is run first in the migration transaction, so that replicas
	// opening the database at once do not both migrate it ("" for none:
	// SQLite's write lock already serializes them).
	lock string
	// dollar: placeholders are $1, $2, ... instead of ?.
	dollar bool
}

var sqliteDialect = dialect{name: "sqlite", migrations: migrations}

// q rewrites a query's ? placeholders for the dialect. The queries of this
// package have no ? inside string literals.
func (d *DB) q(query string) string {
	if !d.dialect.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ErrFenced is a fenced write refused because the leader lease's epoch is no
// longer the writer's: another replica leads now.
var ErrFenced = errors.New("fenced: this replica's leadership epoch is no longer current")

// SetFence makes every later write conditional on the leader lease's epoch
// being epoch (0: unconditional, the single-replica default). A replica sets
// it when it becomes leader, and to NoEpoch when it follows.
func (d *DB) SetFence(epoch uint64) { d.fence.Store(epoch) }

// Fence is the epoch writes are fenced with: 0 unfenced, NoEpoch following.
func (d *DB) Fence() uint64 { return d.fence.Load() }

// NoEpoch is a fence no lease ever has: a follower's writes all fail.
const NoEpoch = ^uint64(0)

// querier is what a write needs of a *sql.DB or *sql.Tx.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// write runs f on the database, or, when writes are fenced, in a transaction
// that first checks the lease's epoch. The check and the write commit
// together: in PostgreSQL the lease row is read FOR SHARE, so a new leader's
// acquisition waits for this transaction and every later fenced write of the
// old leader sees the new epoch; in SQLite the transaction holds the write lock.
func (d *DB) write(ctx context.Context, f func(q querier) error) error {
	return d.writeFor(ctx, "", f)
}

// writeFor is write for a write about resource: when sharded (EnableShards),
// fenced by that resource's own lease (resource_lease) instead of the leader
// lease, in the same way.
func (d *DB) writeFor(ctx context.Context, resource string, f func(q querier) error) error {
	return d.fencedWrite(ctx, resource, false, f)
}

// fencedWrite is writeFor, in a transaction even when unfenced when atomic
// (f's statements must commit together).
func (d *DB) fencedWrite(ctx context.Context, resource string, atomic bool, f func(q querier) error) error {
	check, table := "SELECT epoch FROM leader_lease WHERE name = ?", "leader lease"
	key := "leader"
	fence, sharded := d.resourceFence(resource)
	if sharded {
		check, table, key = "SELECT epoch FROM resource_lease WHERE resource = ?", "lease of "+resource, resource
		if fence == NoEpoch {
			return fmt.Errorf("%w (this replica does not lead %s)", ErrFenced, resource)
		}
	} else {
		fence = d.fence.Load()
	}
	if fence == 0 && !atomic {
		return f(d.db)
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if fence == 0 {
		if err := f(tx); err != nil {
			return err
		}
		return tx.Commit()
	}
	if d.dialect.name == "postgres" {
		check += " FOR SHARE"
	}
	var epoch uint64
	err = tx.QueryRowContext(ctx, d.q(check), key).Scan(&epoch)
	if errors.Is(err, sql.ErrNoRows) || err == nil && epoch != fence {
		return fmt.Errorf("%w (%s epoch %d, this replica's %d)", ErrFenced, table, epoch, fence)
	}
	if err != nil {
		return fmt.Errorf("check fence: %w", err)
	}
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// exec runs one fenced statement.
func (d *DB) exec(ctx context.Context, query string, args ...any) error {
	return d.execFor(ctx, "", query, args...)
}

// execFor runs one statement about resource, fenced as writeFor fences it.
func (d *DB) execFor(ctx context.Context, resource, query string, args ...any) error {
	return d.writeFor(ctx, resource, func(q querier) error {
		_, err := q.ExecContext(ctx, d.q(query), args...)
		return err
	})
}
