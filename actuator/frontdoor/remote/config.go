package remote

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/grayzone/grayzone/internal/yamlfield"
)

// Config is the front door process's configuration: where it listens and
// where serve's xDS server is. Targets, health and shifts come from serve.
type Config struct {
	Resource  string
	XDS       string // serve's xDS server, host:port
	NodeID    string // how serve's logs name this front door (default: frontdoor-HOSTNAME-PID)
	StateFile string // resolved against the config file's directory
	Regional  string
	Zonal     map[string]string // zone -> listen address
	Health    Health
	File      string
}

// Health is the front door's own health checks of the targets it received.
type Health struct {
	Path              string
	Interval, Timeout time.Duration
}

var (
	configKeys = []string{"resource", "xds", "node_id", "state_file", "regional", "zonal", "health_check"}
	healthKeys = []string{"path", "interval", "timeout"}
	nameRe     = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)
)

// LoadConfig reads and checks a front door configuration; errors are one
// line, FILE:LINE: KEY: what is wrong.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(path, data)
}

// ParseConfig is LoadConfig on data read from file.
func ParseConfig(file string, data []byte) (*Config, error) {
	d := &yamlfield.Decoder{File: file, CollapseSpace: true}
	root, second, err := d.Document(data, "empty file (expected a front door configuration: resource, xds, state_file, regional, zonal)")
	if err != nil {
		return nil, err
	}
	c := &Config{File: file, Health: Health{Path: "/health", Interval: time.Second, Timeout: 500 * time.Millisecond}}
	if second != nil {
		d.ErrAt(second.Line, second.Column, "", "only one YAML document is allowed in a configuration file")
	}
	m, ok := d.Mapping(root, configKeys)
	if !ok {
		return nil, d.Err()
	}
	if f, ok := d.Require(m, "resource"); ok {
		if v, ok := d.Str(f); ok {
			if !nameRe.MatchString(v) {
				d.Errorf(f, "%s is not a valid resource name ([a-z0-9-]{1,63})", yamlfield.Quote(v))
			}
			c.Resource = v
		}
	}
	addr := func(f yamlfield.Field, needHost bool) string {
		v, ok := d.Str(f)
		if !ok {
			return ""
		}
		host, port, err := net.SplitHostPort(v)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 || (needHost && (host == "" || n == 0)) {
			d.Errorf(f, "%s is not a valid address (host:port, e.g. 127.0.0.1:18000)", yamlfield.Quote(v))
			return ""
		}
		return v
	}
	if f, ok := d.Require(m, "xds"); ok {
		c.XDS = addr(f, true)
	}
	if f, ok := m.Get("node_id"); ok {
		c.NodeID, _ = d.Str(f)
	}
	if f, ok := d.Require(m, "state_file"); ok {
		if v, ok := d.Str(f); ok {
			if v == "" {
				d.Errorf(f, "empty path")
			} else if !filepath.IsAbs(v) {
				v = filepath.Join(filepath.Dir(file), v)
			}
			c.StateFile = v
		}
	}
	used := map[string]string{}
	listen := func(f yamlfield.Field) string {
		a := addr(f, false)
		if a == "" {
			return ""
		}
		if _, port, _ := net.SplitHostPort(a); port == "0" {
			return a // any free port: never a conflict
		}
		if prev, dup := used[a]; dup {
			d.Errorf(f, "address %s is already used by %s", a, prev)
			return ""
		}
		used[a] = f.Path
		return a
	}
	if f, ok := d.Require(m, "regional"); ok {
		c.Regional = listen(f)
	}
	if f, ok := d.Require(m, "zonal"); ok {
		if zm, ok := d.Mapping(f, nil); ok {
			c.Zonal = map[string]string{}
			for _, zf := range zm.Fields {
				if !nameRe.MatchString(zf.Key) {
					d.Errorf(zf, "%s is not a valid zone id", yamlfield.Quote(zf.Key))
					continue
				}
				c.Zonal[zf.Key] = listen(zf)
			}
			if len(c.Zonal) < 2 {
				d.Errorf(f, "%d zone(s), need at least 2 (one listen address per zone of the resource)", len(c.Zonal))
			}
		}
	}
	if f, ok := m.Get("health_check"); ok {
		if hm, ok := d.Mapping(f, healthKeys); ok {
			if pf, ok := hm.Get("path"); ok {
				if v, ok := d.Str(pf); ok {
					if len(v) == 0 || v[0] != '/' {
						d.Errorf(pf, "%s must start with /", yamlfield.Quote(v))
					}
					c.Health.Path = v
				}
			}
			if iv, ok := hm.Get("interval"); ok {
				if v, ok := d.DurationIn(iv, 100*time.Millisecond, time.Minute); ok {
					c.Health.Interval = v
				}
			}
			if tf, ok := hm.Get("timeout"); ok {
				if v, ok := d.DurationIn(tf, 10*time.Millisecond, time.Minute); ok {
					c.Health.Timeout = v
				}
			}
		}
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// Zones lists the configured zones, sorted.
func (c *Config) Zones() []string {
	out := make([]string, 0, len(c.Zonal))
	for z := range c.Zonal {
		out = append(out, z)
	}
	slices.Sort(out)
	return out
}
