package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Sharding: with replica.sharded, every resource has its own lease
// (resource_lease), so that replicas share the resources instead of one
// leader doing them all. The replicas that are alive announce themselves in
// replica_member (a heartbeat with the same time to live), so that each can
// compute its fair share. A resource's writes (shifts, audit entries,
// runbook and practice state) are fenced by its own lease's epoch, exactly as
// a single leader's writes are fenced by the leader lease's.
//
// Expiries are compared on the database's clock in PostgreSQL (as the
// leader lease's), on this machine's in SQLite.
const shardsDDL = `CREATE TABLE resource_lease (
		resource   TEXT PRIMARY KEY,
		holder     TEXT NOT NULL,
		address    TEXT NOT NULL,
		epoch      BIGINT NOT NULL,
		expires_at TIMESTAMP NOT NULL
	);
	CREATE TABLE replica_member (
		holder     TEXT PRIMARY KEY,
		address    TEXT NOT NULL,
		expires_at TIMESTAMP NOT NULL
	);`

// ResourceLease is one resource's lease as the database holds it.
type ResourceLease struct {
	Resource string `json:"resource"`
	Holder   string `json:"holder"`
	Address  string `json:"address"`
	Epoch    uint64 `json:"epoch"`
	// Live: not expired at the time of the read (the database's clock).
	Live bool `json:"live"`
}

// Member is a live replica, as its last heartbeat announced it.
type Member struct {
	Holder  string `json:"holder"`
	Address string `json:"address"`
}

// shardFences are the epochs this process writes each resource under.
type shardFences struct {
	mu     sync.Mutex
	on     map[string]bool   // the resources fenced per resource; nil: sharding off
	epochs map[string]uint64 // resource -> epoch of the lease held; absent: not held
}

// EnableShards fences every later write about one of resources by that
// resource's own lease (resource_lease) instead of the leader lease: it
// commits only while the resource's lease has the epoch SetResourceFence
// gave. Until then, and after SetResourceFence(r, 0), such writes fail.
// Writes about nothing in resources (service entries, the outbox) stay
// fenced by the leader lease (SetFence).
func (d *DB) EnableShards(resources []string) {
	f := &d.shards
	f.mu.Lock()
	defer f.mu.Unlock()
	f.on, f.epochs = map[string]bool{}, map[string]uint64{}
	for _, r := range resources {
		f.on[r] = true
	}
}

// SetResourceFence sets the epoch this process writes resource under
// (0: it does not lead the resource; its writes about it fail).
func (d *DB) SetResourceFence(resource string, epoch uint64) {
	f := &d.shards
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.epochs == nil {
		return
	}
	if epoch == 0 {
		delete(f.epochs, resource)
		return
	}
	f.epochs[resource] = epoch
}

// resourceFence returns the epoch writes about resource need, and whether
// they are fenced per resource at all.
func (d *DB) resourceFence(resource string) (uint64, bool) {
	f := &d.shards
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.on[resource] {
		return 0, false
	}
	e, ok := f.epochs[resource]
	if !ok {
		return NoEpoch, true
	}
	return e, true
}

// resourceOfKey is the resource a state key is about ("runbook/web": web).
func resourceOfKey(key string) string {
	_, r, _ := strings.Cut(key, "/")
	return r
}

// clock returns the SQL of now and of now+ttl with their arguments: the
// database's clock in PostgreSQL, this machine's in SQLite.
func (d *DB) clock(ttl time.Duration) (now string, nowArgs []any, exp string, expArgs []any) {
	if d.dialect.name == "postgres" {
		return pgNow, nil, pgExpires, []any{ttl.Milliseconds()}
	}
	t := time.Now()
	return "?", []any{formatTime(t)}, "?", []any{formatTime(t.Add(ttl))}
}

// memberKeep is how long a lapsed member's row is kept.
const memberKeep = time.Minute

// Heartbeat announces holder (at address) as a live replica for ttl, forgets
// replicas whose heartbeat lapsed a while ago (memberKeep), and returns the live ones, holder first
// followed by the others in name order.
func (d *DB) Heartbeat(ctx context.Context, holder, address string, ttl time.Duration) ([]Member, error) {
	now, nowArgs, exp, expArgs := d.clock(ttl)
	args := append([]any{holder, address}, expArgs...)
	if _, err := d.db.ExecContext(ctx, d.q(`INSERT INTO replica_member (holder, address, expires_at) VALUES (?, ?, `+exp+`)
		ON CONFLICT (holder) DO UPDATE SET address = excluded.address, expires_at = excluded.expires_at`), args...); err != nil {
		return nil, fmt.Errorf("store: heartbeat: %w", err)
	}
	// Lapsed rows are kept a while: UnshardedLeader must still recognise a
	// sharded replica that died holding the leader lease.
	_, _, stale, staleArgs := d.clock(-memberKeep)
	if _, err := d.db.ExecContext(ctx, d.q(`DELETE FROM replica_member WHERE expires_at <= `+stale), staleArgs...); err != nil {
		return nil, fmt.Errorf("store: heartbeat: %w", err)
	}
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT holder, address FROM replica_member WHERE holder = ? OR expires_at > `+now+`
		ORDER BY holder <> ?, holder`), append(append([]any{holder}, nowArgs...), holder)...)
	if err != nil {
		return nil, fmt.Errorf("store: heartbeat: %w", err)
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var m Member
		if err := rows.Scan(&m.Holder, &m.Address); err != nil {
			return nil, fmt.Errorf("store: heartbeat: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: heartbeat: %w", err)
	}
	return out, nil
}

// LeaveMembership removes holder from the live replicas (a clean shutdown):
// the others count it out at once.
func (d *DB) LeaveMembership(ctx context.Context, holder string) error {
	if _, err := d.db.ExecContext(ctx, d.q(`DELETE FROM replica_member WHERE holder = ?`), holder); err != nil {
		return fmt.Errorf("store: leave membership: %w", err)
	}
	return nil
}

// ResourceLeases returns every resource's lease, live or not.
func (d *DB) ResourceLeases(ctx context.Context) ([]ResourceLease, error) {
	now, nowArgs, _, _ := d.clock(0)
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT resource, holder, address, epoch, expires_at > `+now+` FROM resource_lease ORDER BY resource`), nowArgs...)
	if err != nil {
		return nil, fmt.Errorf("store: read resource leases: %w", err)
	}
	defer rows.Close()
	var out []ResourceLease
	for rows.Next() {
		var l ResourceLease
		var epoch int64
		if err := rows.Scan(&l.Resource, &l.Holder, &l.Address, &epoch, &l.Live); err != nil {
			return nil, fmt.Errorf("store: read resource leases: %w", err)
		}
		l.Epoch = uint64(epoch)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read resource leases: %w", err)
	}
	return out, nil
}

// AcquireResourceLease takes resource's lease for holder when it is free,
// expired or already holder's, with the next epoch (1 for a new one). It
// reports false, and the lease as it stands, when another holds it.
func (d *DB) AcquireResourceLease(ctx context.Context, resource, holder, address string, ttl time.Duration) (ResourceLease, bool, error) {
	now, nowArgs, exp, expArgs := d.clock(ttl)
	args := append(append([]any{resource, holder, address}, expArgs...), nowArgs...)
	var epoch int64
	err := d.db.QueryRowContext(ctx, d.q(`INSERT INTO resource_lease (resource, holder, address, epoch, expires_at) VALUES (?, ?, ?, 1, `+exp+`)
		ON CONFLICT (resource) DO UPDATE SET holder = excluded.holder, address = excluded.address,
			epoch = resource_lease.epoch + 1, expires_at = excluded.expires_at
		WHERE resource_lease.holder = excluded.holder OR resource_lease.expires_at <= `+now+`
		RETURNING epoch`), args...).Scan(&epoch)
	if errors.Is(err, sql.ErrNoRows) {
		l := ResourceLease{Resource: resource}
		err := d.db.QueryRowContext(ctx, d.q(`SELECT holder, address, epoch FROM resource_lease WHERE resource = ?`), resource).
			Scan(&l.Holder, &l.Address, &epoch)
		if err != nil {
			return ResourceLease{}, false, fmt.Errorf("store: acquire lease of %s: %w", resource, err)
		}
		l.Epoch, l.Live = uint64(epoch), true
		return l, false, nil
	}
	if err != nil {
		return ResourceLease{}, false, fmt.Errorf("store: acquire lease of %s: %w", resource, err)
	}
	return ResourceLease{Resource: resource, Holder: holder, Address: address, Epoch: uint64(epoch), Live: true}, true, nil
}

// RenewResourceLeases extends, by ttl from now, every unexpired resource
// lease holder holds, and returns them (resource -> epoch). A lease missing
// from the answer, or with another epoch, is no longer the caller's.
func (d *DB) RenewResourceLeases(ctx context.Context, holder string, ttl time.Duration) (map[string]uint64, error) {
	now, nowArgs, exp, expArgs := d.clock(ttl)
	args := append(append(expArgs, holder), nowArgs...)
	rows, err := d.db.QueryContext(ctx, d.q(`UPDATE resource_lease SET expires_at = `+exp+`
		WHERE holder = ? AND expires_at > `+now+` RETURNING resource, epoch`), args...)
	if err != nil {
		return nil, fmt.Errorf("store: renew resource leases: %w", err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var r string
		var epoch int64
		if err := rows.Scan(&r, &epoch); err != nil {
			return nil, fmt.Errorf("store: renew resource leases: %w", err)
		}
		out[r] = uint64(epoch)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: renew resource leases: %w", err)
	}
	return out, nil
}

// ReleaseResourceLease gives up holder's lease of resource under epoch at
// once, so that another replica need not wait for it to expire. Its epoch
// stays: the next holder's acquisition gets the one after.
func (d *DB) ReleaseResourceLease(ctx context.Context, resource, holder string, epoch uint64) error {
	past := any(formatTime(time.Unix(0, 0)))
	if d.dialect.name == "postgres" {
		past = time.Unix(0, 0)
	}
	if _, err := d.db.ExecContext(ctx, d.q(`UPDATE resource_lease SET expires_at = ? WHERE resource = ? AND holder = ? AND epoch = ?`),
		past, resource, holder, int64(epoch)); err != nil {
		return fmt.Errorf("store: release lease of %s: %w", resource, err)
	}
	return nil
}

// UnshardedLeader returns the holder of a live leader lease that is not a
// sharded replica ("" when there is none): a replica without
// replica.sharded, which acts on every resource. Sharded replicas take no
// resource while it leads, so that no resource has two leaders in a fleet
// configured half one way, half the other.
func (d *DB) UnshardedLeader(ctx context.Context) (string, error) {
	now, nowArgs, _, _ := d.clock(0)
	var holder string
	// Any member row counts, lapsed or not: one that died holding the
	// leader lease was sharded all the same.
	err := d.db.QueryRowContext(ctx, d.q(`SELECT holder FROM leader_lease WHERE name = 'leader' AND expires_at > `+now+`
		AND holder NOT IN (SELECT holder FROM replica_member)`), nowArgs...).Scan(&holder)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: read the leader lease: %w", err)
	}
	return holder, nil
}

// LiveResourceLeases counts the resource leases that have not expired: a
// replica without replica.sharded does not lead while sharded ones do.
func (d *DB) LiveResourceLeases(ctx context.Context) (int, error) {
	ls, err := d.ResourceLeases(ctx)
	n := 0
	for _, l := range ls {
		if l.Live {
			n++
		}
	}
	return n, err
}
