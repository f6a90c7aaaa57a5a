package config

import (
	"strings"
	"time"

	"github.com/grayzone/grayzone/internal/yamlfield"
)

// Replica configures one replica of several sharing a PostgreSQL store.
type Replica struct {
	// Name is this replica's name in the leader lease; it must differ
	// between live replicas (default: host name and API address).
	Name string
	// Advertise is the API address followers send clients to when this
	// replica leads (default: the address the API is bound to).
	Advertise string
	// Lease bounds failover: a follower leads at most this long after the
	// leader was last heard from (default 10s).
	Lease time.Duration
}

var replicaKeys = []string{"name", "advertise", "lease"}

// Lease limits: below a second, database round trips eat the margins; above
// a minute, failover is slower than an operator.
const (
	DefaultLease = 10 * time.Second
	MinLease     = time.Second
	MaxLease     = time.Minute
)

// replicas parses the top-level store and replica keys.
func (p *parser) replicas(m *yamlfield.Mapping, c *Config) {
	c.Replica.Lease = DefaultLease
	if f, ok := m.Get("store"); ok {
		if v, ok := p.Str(f); ok {
			if !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
				p.Errorf(f, "want a postgres:// URL (omit it for SQLite under data_dir), got %s", yamlfield.Quote(v))
			}
			c.Store = v
		}
	}
	f, ok := m.Get("replica")
	if !ok {
		return
	}
	rm, ok := p.Mapping(f, replicaKeys)
	if !ok {
		return
	}
	if nf, ok := rm.Get("name"); ok {
		if v, ok := p.Str(nf); ok {
			if strings.TrimSpace(v) == "" {
				p.Errorf(nf, "must not be empty (omit it for host name and API address)")
			}
			c.Replica.Name = v
		}
	}
	if af, ok := rm.Get("advertise"); ok {
		c.Replica.Advertise, _ = p.hostPort(af, true)
	}
	if lf, ok := rm.Get("lease"); ok {
		if v, ok := p.DurationIn(lf, MinLease, MaxLease); ok {
			c.Replica.Lease = v
		}
	}
}
