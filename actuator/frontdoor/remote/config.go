package remote

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/grayzone/grayzone/internal/loopback"
	"github.com/grayzone/grayzone/internal/yamlfield"
)

// Config is the front door process's configuration: where it listens and
// where serve's xDS server is. Targets, health and shifts come from serve.
type Config struct {
	Resource  string
	XDS       string // serve's xDS server, host:port
	TLS       TLS    // mutual TLS to serve; required unless XDS is on loopback or Insecure
	Insecure  bool   // plaintext xDS off loopback: trusted networks only, warned at start
	NodeID    string // how serve's logs name this front door (default: frontdoor-HOSTNAME-PID)
	StateFile string // resolved against the config file's directory
	Regional  string
	Zonal     map[string]string // zone -> listen address
	// Targets are the only backends the front door routes to: a state from
	// serve naming any other is refused.
	Targets []Target
	// MetricsListen serves /metrics (Prometheus text) when set.
	MetricsListen string
	// MaxConnections and ResponseTimeout bound the customer side (zero:
	// the front door's defaults, see frontdoor.Limits).
	MaxConnections  int
	ResponseTimeout time.Duration
	Health          Health
	File            string
}

// TLS is the front door's side of mutual TLS with serve's xDS server; the
// files are re-read when they change. All empty: plaintext.
type TLS struct {
	CAFile     string // verifies serve's certificate
	CertFile   string // presented to serve
	KeyFile    string
	ServerName string // the name serve's certificate must carry (default: the host of xds)
}

// Enabled reports whether the front door speaks TLS to serve.
func (t TLS) Enabled() bool { return t.CAFile != "" }

// Health is the front door's own health checks of the targets it received.
type Health struct {
	Path              string
	Interval, Timeout time.Duration
}

var (
	configKeys = []string{"resource", "xds", "tls", "insecure", "node_id", "state_file", "regional", "zonal", "targets",
		"metrics_listen", "max_connections", "response_timeout", "health_check"}
	healthKeys = []string{"path", "interval", "timeout"}
	tlsKeys    = []string{"ca_file", "cert_file", "key_file", "server_name"}
	targetKeys = []string{"id", "zone", "addr"}
	targetRe   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,63}$`)
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
	xdsField, _ := m.Get("xds")
	if f, ok := m.Get("insecure"); ok {
		c.Insecure, _ = d.Boolean(f)
	}
	if f, ok := m.Get("tls"); ok {
		c.tls(d, f)
	}
	if c.XDS != "" && !c.TLS.Enabled() && !c.Insecure && !loopback.Is(c.XDS) {
		d.Errorf(xdsField, "%s is not a loopback address: set tls (ca_file, cert_file, key_file) for mutual TLS with serve, or insecure: true on a trusted network", c.XDS)
	}
	if c.TLS.Enabled() && c.Insecure {
		d.Errorf(xdsField, "both tls and insecure: true are set; choose one")
	}
	if f, ok := d.Require(m, "targets"); ok {
		c.targets(d, f)
	}
	if f, ok := m.Get("metrics_listen"); ok {
		if c.MetricsListen = listen(f); c.MetricsListen != "" && !c.Insecure && !loopback.Is(c.MetricsListen) {
			d.Errorf(f, "%s is not a loopback address: /metrics has no credential; bind it to loopback, or set insecure: true on a trusted network", c.MetricsListen)
		}
	}
	if f, ok := m.Get("max_connections"); ok {
		c.MaxConnections, _ = d.IntIn(f, 1, 1<<20)
	}
	if f, ok := m.Get("response_timeout"); ok {
		c.ResponseTimeout, _ = d.DurationIn(f, 100*time.Millisecond, time.Hour)
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

// tls reads the mutual-TLS section: ca_file, cert_file and key_file all
// set, paths resolved against the configuration file's directory.
func (c *Config) tls(d *yamlfield.Decoder, f yamlfield.Field) {
	m, ok := d.Mapping(f, tlsKeys)
	if !ok {
		return
	}
	for _, k := range []struct {
		key string
		to  *string
	}{{"ca_file", &c.TLS.CAFile}, {"cert_file", &c.TLS.CertFile}, {"key_file", &c.TLS.KeyFile}} {
		kf, ok := d.Require(m, k.key)
		if !ok {
			continue
		}
		if v, ok := d.Str(kf); ok {
			if v == "" {
				d.Errorf(kf, "empty path")
				continue
			}
			if !filepath.IsAbs(v) {
				v = filepath.Join(filepath.Dir(c.File), v)
			}
			*k.to = v
		}
	}
	if sf, ok := m.Get("server_name"); ok {
		c.TLS.ServerName, _ = d.Str(sf)
	}
}

// targets reads the list of backends the front door may route to.
func (c *Config) targets(d *yamlfield.Decoder, f yamlfield.Field) {
	items, ok := d.List(f, "a list of targets ({id, zone, addr}), as in serve's configuration")
	if !ok {
		return
	}
	if len(items) == 0 {
		d.Errorf(f, "no targets (list the backends serve may send, as in serve's configuration)")
	}
	ids, addrs := map[string]bool{}, map[string]bool{}
	for _, it := range items {
		m, ok := d.Mapping(it, targetKeys)
		if !ok {
			continue
		}
		var t Target
		if idf, ok := d.Require(m, "id"); ok {
			if v, ok := d.Str(idf); ok {
				if !targetRe.MatchString(v) {
					d.Errorf(idf, "%s is not a valid target id ([A-Za-z0-9._-]{1,63})", yamlfield.Quote(v))
				} else if ids[v] {
					d.Errorf(idf, "duplicate target id %s", yamlfield.Quote(v))
				}
				ids[v], t.ID = true, v
			}
		}
		if zf, ok := d.Require(m, "zone"); ok {
			if v, ok := d.Str(zf); ok {
				if _, known := c.Zonal[v]; !known && c.Zonal != nil {
					d.Errorf(zf, "unknown zone %s (zones: the keys of zonal)", yamlfield.Quote(v))
				}
				t.Zone = v
			}
		}
		if af, ok := d.Require(m, "addr"); ok {
			if v, ok := d.Str(af); ok {
				host, port, err := net.SplitHostPort(v)
				if n, perr := strconv.Atoi(port); err != nil || perr != nil || host == "" || n <= 0 || n > 65535 {
					d.Errorf(af, "%s is not a valid address (host:port, e.g. 10.0.1.10:8080)", yamlfield.Quote(v))
				} else if addrs[v] {
					d.Errorf(af, "duplicate target address %s", v)
				}
				addrs[v], t.Addr = true, v
			}
		}
		c.Targets = append(c.Targets, t)
	}
}

// allowed reports whether the configuration lists t (id, zone and address).
func (c *Config) allowed(t Target) bool {
	for _, a := range c.Targets {
		if a.ID == t.ID && a.Zone == t.Zone && a.Addr == t.Addr {
			return true
		}
	}
	return false
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
