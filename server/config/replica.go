package config

import (
	"fmt"
	"os"
	"path/filepath"
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
	// Sharded: every resource has its own lease and the replicas share the
	// resources (each leads a fair share), instead of one leading them all.
	Sharded bool
}

var replicaKeys = []string{"name", "advertise", "lease", "sharded"}

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
			if !isStoreURL(v) {
				p.Errorf(f, "want a postgres:// URL (omit it for SQLite under data_dir), got %s", yamlfield.Quote(v))
			}
			c.Store = v
		}
	}
	if f, ok := m.Get("store_file"); ok {
		if _, both := m.Get("store"); both {
			p.Errorf(f, "give store or store_file, not both")
		} else if v, ok := p.Str(f); ok {
			if strings.TrimSpace(v) == "" {
				p.Errorf(f, "must not be empty (omit it for SQLite under data_dir)")
			} else {
				if !filepath.IsAbs(v) {
					v = filepath.Join(filepath.Dir(p.File), v)
				}
				c.StoreFile = v
			}
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
	if sf, ok := rm.Get("sharded"); ok {
		if v, ok := p.Boolean(sf); ok {
			if v && c.Store == "" && c.StoreFile == "" {
				p.Errorf(sf, "needs a shared store (store or store_file): replicas share the resources through its leases")
			}
			c.Replica.Sharded = v
		}
	}
}

func isStoreURL(v string) bool {
	return strings.HasPrefix(v, "postgres://") || strings.HasPrefix(v, "postgresql://")
}

// LoadStore reads store_file, when given, into Store: one postgres:// URL,
// surrounding white space ignored. The file's content is never echoed (it
// holds the database password).
func (c *Config) LoadStore() error {
	if c.StoreFile == "" {
		return nil
	}
	data, err := os.ReadFile(c.StoreFile)
	if err != nil {
		return fmt.Errorf("store_file: %w", err)
	}
	v := strings.TrimSpace(string(data))
	if !isStoreURL(v) || strings.ContainsAny(v, " \t\r\n") {
		return fmt.Errorf("store_file: %s does not hold one postgres:// URL", c.StoreFile)
	}
	c.Store = v
	return nil
}
