// Package database is the lab's one database and the app's view of it: a
// throwaway real PostgreSQL cluster (StartPostgres), an embedded store that
// speaks enough of the PostgreSQL wire protocol for the app (StartEmbedded),
// the schema, and the client app instances use (Open).
//
// Every app operation is ONE statement, so a per-call fault on the database
// link hits it once (a k-statement transaction would fail with probability
// 1-(1-p)^k).
package database

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Timeout is the app's database timeout: every call, including waiting for a
// pooled connection and connecting, gives up after it.
const Timeout = 2 * time.Second

// MaxConns is the pool size of one app instance.
const MaxConns = 8

// Schema creates the app's tables; it is idempotent. Both the real
// PostgreSQL and the embedded store accept exactly this text.
const Schema = `CREATE TABLE IF NOT EXISTS rides (
	id bigserial PRIMARY KEY,
	zone text NOT NULL,
	instance text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS payments (
	id bigserial PRIMARY KEY,
	zone text NOT NULL,
	instance text NOT NULL,
	cents bigint NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);`

// The app's statements. pgx's simple protocol inlines the arguments as
// literals; the embedded store matches these templates token by token.
const (
	InsertRide    = `INSERT INTO rides (zone, instance) VALUES ($1, $2) RETURNING id`
	InsertPayment = `INSERT INTO payments (zone, instance, cents) VALUES ($1, $2, $3) RETURNING id`
)

// Store is what an app instance needs from the database.
type Store interface {
	// Ride records a ride booked through instance in zone and returns its id.
	Ride(ctx context.Context, zone, instance string) (int64, error)
	// Pay records a payment of cents through instance in zone and returns its id.
	Pay(ctx context.Context, zone, instance string, cents int64) (int64, error)
}

// Client is a Store over a small pgx pool.
type Client struct {
	pool *pgxpool.Pool
}

var _ Store = (*Client)(nil)

// Open returns a client for url (postgres://...). It does not connect until
// the first call, so an app instance starts even while its link is down.
func Open(ctx context.Context, url string) (*Client, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database: parse url: %w", err)
	}
	configure(cfg.ConnConfig)
	cfg.MaxConns = MaxConns
	cfg.MinConns = 0
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database: open pool: %w", err)
	}
	return &Client{pool: pool}, nil
}

// configure applies what the lab's database link needs of every connection.
func configure(cc *pgx.ConnConfig) {
	// The simple protocol makes each call exactly one Query message, which is
	// what the link's fault toxic rolls on, and what the embedded store speaks.
	cc.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	// Without it pgxpool keeps stalled connects going for up to 2 minutes.
	cc.ConnectTimeout = Timeout
}

// Warm opens the pool's connections before the instance takes traffic, as a
// service does while it starts: a connection (TCP, authentication, a server
// process) costs far more than a query, and a fleet that opened them all
// under its first customer requests would look, to the detector, like
// latency in every zone at once. Best effort: it gives up at ctx's end
// (the link may be down), and the pool connects on demand as before.
func (c *Client) Warm(ctx context.Context) {
	conns := make(chan *pgxpool.Conn, MaxConns)
	var wg sync.WaitGroup
	for range MaxConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if cn, err := c.pool.Acquire(ctx); err == nil {
				conns <- cn // held, so that every Acquire opens its own
			}
		}()
	}
	wg.Wait()
	close(conns)
	for cn := range conns {
		cn.Release()
	}
}

// Close closes every pooled connection.
func (c *Client) Close() { c.pool.Close() }

// Ride implements Store.
func (c *Client) Ride(ctx context.Context, zone, instance string) (int64, error) {
	id, err := c.insert(ctx, InsertRide, zone, instance)
	if err != nil {
		return 0, fmt.Errorf("database: ride for %s/%s: %w", zone, instance, err)
	}
	return id, nil
}

// Pay implements Store.
func (c *Client) Pay(ctx context.Context, zone, instance string, cents int64) (int64, error) {
	id, err := c.insert(ctx, InsertPayment, zone, instance, cents)
	if err != nil {
		return 0, fmt.Errorf("database: pay %d for %s/%s: %w", cents, zone, instance, err)
	}
	return id, nil
}

func (c *Client) insert(ctx context.Context, sql string, args ...any) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	var id int64
	if err := c.pool.QueryRow(ctx, sql, args...).Scan(&id); err != nil {
		return 0, err
	}
	return id, nil
}

// Migrate creates the tables if they do not exist yet.
func Migrate(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("database: migrate: parse url: %w", err)
	}
	configure(cfg)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("database: migrate: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Concurrent CREATE TABLE IF NOT EXISTS can still collide in PostgreSQL's
	// catalogs; the loser tries again and then sees the tables.
	for attempt := 1; ; attempt++ {
		_, err = conn.Exec(ctx, Schema)
		if err == nil || attempt == 3 || !isCatalogRace(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("database: migrate: %w", err)
	}
	return nil
}

// isCatalogRace reports the errors two concurrent CREATE TABLE IF NOT EXISTS
// of one table can give the loser.
func isCatalogRace(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "23505", // unique_violation on pg_type / pg_class
		"42P07", // duplicate_table
		"42710": // duplicate_object: the table's row type
		return true
	}
	return false
}
