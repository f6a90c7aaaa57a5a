package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Lease is the leader lease: one row naming the replica that leads, the
// address of its API (where followers send clients), and the epoch, which
// grows by one at every acquisition and is the fencing token of everything
// the leader does.
type Lease struct {
	Holder  string    `json:"holder"`
	Address string    `json:"address"`
	Epoch   uint64    `json:"epoch"`
	Expires time.Time `json:"expires"` // on the database's clock (SQLite: this machine's)
}

// The lease's expiry is compared on the database's clock in PostgreSQL, so
// that replicas on different machines agree on it whatever their clocks say;
// SQLite lives on one machine, whose clock is the database's.
const (
	pgNow     = "clock_timestamp()"
	pgExpires = "clock_timestamp() + ? * interval '1 millisecond'"
)

// AcquireLease takes the lease for holder when it is free, expired, or
// already holder's (a replica restarted under the same name), with the next
// epoch. It reports false, and the current lease, when another holds it.
func (d *DB) AcquireLease(ctx context.Context, holder, address string, ttl time.Duration) (Lease, bool, error) {
	now, expires := any(formatTime(time.Now())), any(formatTime(time.Now().Add(ttl)))
	nowSQL, expSQL := "?", "?"
	var args []any
	if d.dialect.name == "postgres" {
		nowSQL, expSQL = pgNow, pgExpires
		args = []any{holder, address, ttl.Milliseconds()}
	} else {
		args = []any{holder, address, expires, now}
	}
	q := `INSERT INTO leader_lease (name, holder, address, epoch, expires_at) VALUES ('leader', ?, ?, 1, ` + expSQL + `)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, address = excluded.address,
			epoch = leader_lease.epoch + 1, expires_at = excluded.expires_at
		WHERE leader_lease.holder = excluded.holder OR leader_lease.expires_at <= ` + nowSQL + `
		RETURNING epoch`
	var epoch uint64
	err := d.db.QueryRowContext(ctx, d.q(q), args...).Scan(&epoch)
	if errors.Is(err, sql.ErrNoRows) {
		cur, _, err := d.CurrentLease(ctx)
		return cur, false, err
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("store: acquire lease: %w", err)
	}
	l, _, err := d.CurrentLease(ctx)
	if err != nil {
		return Lease{}, false, err
	}
	l.Epoch = epoch // ours, even if another has taken it since
	return l, true, nil
}

// RenewLease extends holder's lease of epoch by ttl from now. It reports
// false when the lease is no longer that: expired, or taken by another.
func (d *DB) RenewLease(ctx context.Context, holder string, epoch uint64, ttl time.Duration) (bool, error) {
	var res sql.Result
	var err error
	if d.dialect.name == "postgres" {
		res, err = d.db.ExecContext(ctx, d.q(`UPDATE leader_lease SET expires_at = `+pgExpires+`
			WHERE name = 'leader' AND holder = ? AND epoch = ? AND expires_at > `+pgNow), ttl.Milliseconds(), holder, int64(epoch))
	} else {
		now := time.Now()
		res, err = d.db.ExecContext(ctx, `UPDATE leader_lease SET expires_at = ?
			WHERE name = 'leader' AND holder = ? AND epoch = ? AND expires_at > ?`,
			formatTime(now.Add(ttl)), holder, int64(epoch), formatTime(now))
	}
	if err != nil {
		return false, fmt.Errorf("store: renew lease: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: renew lease: %w", err)
	}
	return n == 1, nil
}

// ReleaseLease gives up holder's lease of epoch at once (a clean shutdown),
// so that a follower need not wait for it to expire.
func (d *DB) ReleaseLease(ctx context.Context, holder string, epoch uint64) error {
	past := any(formatTime(time.Unix(0, 0)))
	if d.dialect.name == "postgres" {
		past = time.Unix(0, 0)
	}
	_, err := d.db.ExecContext(ctx, d.q(`UPDATE leader_lease SET expires_at = ? WHERE name = 'leader' AND holder = ? AND epoch = ?`),
		past, holder, int64(epoch))
	if err != nil {
		return fmt.Errorf("store: release lease: %w", err)
	}
	return nil
}

// CurrentLease returns the lease as it stands (expired or not), and whether
// there is one.
func (d *DB) CurrentLease(ctx context.Context) (Lease, bool, error) {
	var l Lease
	var epoch int64
	var exp any
	var expText string
	var expTime time.Time
	if d.dialect.name == "postgres" {
		exp = &expTime
	} else {
		exp = &expText
	}
	err := d.db.QueryRowContext(ctx, "SELECT holder, address, epoch, expires_at FROM leader_lease WHERE name = 'leader'").
		Scan(&l.Holder, &l.Address, &epoch, exp)
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("store: read lease: %w", err)
	}
	l.Epoch = uint64(epoch)
	if d.dialect.name == "postgres" {
		l.Expires = expTime.UTC()
	} else {
		var tp timeParser
		if l.Expires = tp.parse(expText); tp.err != nil {
			return Lease{}, false, fmt.Errorf("store: read lease: %w", tp.err)
		}
	}
	return l, true, nil
}
