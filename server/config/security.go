package config

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/grayzone/grayzone/internal/yamlfield"
)

// Limits of the front door's client side (see docs/security.md); zero
// means the front door's default (64 KiB, 5 s, 60 s, 2 min, 10 000
// connections, 60 s for a backend's response head).
type Limits struct {
	MaxHeaderBytes  int
	HeaderTimeout   time.Duration
	BodyTimeout     time.Duration
	IdleTimeout     time.Duration
	MaxConnections  int
	ResponseTimeout time.Duration
}

// TLS is the API's and dashboard's certificate; both empty: plain HTTP.
type TLS struct {
	CertFile, KeyFile string
}

// Enabled reports whether the API serves HTTPS.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// frontdoorLimitKeys are the front door's client limits, keys of its section.
var frontdoorLimitKeys = []string{"record_zonal", "max_header_bytes", "header_timeout", "body_timeout", "idle_timeout",
	"max_connections", "response_timeout"}

// limits reads the front door's client limits, and record_zonal, from its mapping.
func (p *parser) limits(m *yamlfield.Mapping, fd *FrontDoor) {
	if f, ok := m.Get("record_zonal"); ok {
		if v, ok := p.Boolean(f); ok {
			fd.RecordZonal = v
		}
	}
	l := &fd.Limits
	if f, ok := m.Get("max_header_bytes"); ok {
		if v, ok := p.IntIn(f, 8<<10, 1<<20); ok {
			l.MaxHeaderBytes = v
		}
	}
	if f, ok := m.Get("max_connections"); ok {
		if v, ok := p.IntIn(f, 1, 1<<20); ok {
			l.MaxConnections = v
		}
	}
	if f, ok := m.Get("response_timeout"); ok {
		if v, ok := p.DurationIn(f, 100*time.Millisecond, time.Hour); ok {
			l.ResponseTimeout = v
		}
	}
	p.timeouts(m, &l.HeaderTimeout, &l.BodyTimeout, &l.IdleTimeout)
}

// timeouts reads header_timeout, body_timeout and idle_timeout, the same
// keys and ranges for every listener that has them (the front door's
// client side, the telemetry listeners).
func (p *parser) timeouts(m *yamlfield.Mapping, header, body, idle *time.Duration) {
	for _, d := range []struct {
		key    string
		to     *time.Duration
		lo, hi time.Duration
	}{
		{"header_timeout", header, 100 * time.Millisecond, 5 * time.Minute},
		{"body_timeout", body, 100 * time.Millisecond, time.Hour},
		{"idle_timeout", idle, 100 * time.Millisecond, time.Hour},
	} {
		if f, ok := m.Get(d.key); ok {
			if v, ok := p.DurationIn(f, d.lo, d.hi); ok {
				*d.to = v
			}
		}
	}
}

// tls reads tls_cert_file and tls_key_file (top level): both or neither,
// resolved against the configuration file's directory.
func (p *parser) tls(m *yamlfield.Mapping, t *TLS) {
	t.CertFile, t.KeyFile = p.certPair(m, "tls_cert_file", "tls_key_file", "HTTPS", "omit tls_cert_file and tls_key_file for plain HTTP")
}

// certPair reads a certificate and its key, named by certKey and keyKey:
// both or neither (purpose says what they are for), each a non-empty path
// resolved against the configuration file's directory; omit says how to
// do without, for an empty one.
func (p *parser) certPair(m *yamlfield.Mapping, certKey, keyKey, purpose, omit string) (cert, key string) {
	cert, cf, hasC := p.filePath(m, certKey, omit)
	key, kf, hasK := p.filePath(m, keyKey, omit)
	switch {
	case hasC && !hasK:
		p.Errorf(cf, "set without %s (both are needed for %s)", keyKey, purpose)
		return "", ""
	case hasK && !hasC:
		p.Errorf(kf, "set without %s (both are needed for %s)", certKey, purpose)
		return "", ""
	}
	return cert, key
}

// filePath reads a non-empty path, resolved against the configuration
// file's directory; omit says how to do without, for an empty one.
func (p *parser) filePath(m *yamlfield.Mapping, key, omit string) (string, yamlfield.Field, bool) {
	f, ok := m.Get(key)
	if !ok {
		return "", f, false
	}
	v, ok := p.Str(f)
	if !ok {
		return "", f, true
	}
	if strings.TrimSpace(v) == "" {
		p.Errorf(f, "must not be empty (%s)", omit)
		return "", f, true
	}
	if !filepath.IsAbs(v) {
		v = filepath.Join(filepath.Dir(p.File), v)
	}
	return v, f, true
}
