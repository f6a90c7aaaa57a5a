package config

import (
	"path/filepath"
	"strings"

	"github.com/grayzone/grayzone/internal/loopback"
	"github.com/grayzone/grayzone/internal/yamlfield"
)

// XDSSecurity is how serve's xDS server (front door type xds) tells its
// proxies from anyone else: mutual TLS, the files re-read when they change.
// Off loopback, plaintext needs Insecure.
type XDSSecurity struct {
	CertFile, KeyFile string // presented to the proxies
	ClientCAFile      string // a proxy's certificate must be signed by it
	Insecure          bool   // plaintext off loopback: trusted networks only, warned at start
}

// MutualTLS reports whether the xDS server requires client certificates.
func (x XDSSecurity) MutualTLS() bool { return x.CertFile != "" }

var xdsTLSKeys = []string{"cert_file", "key_file", "client_ca_file"}

// xdsSecurity reads tls and insecure of a front door of type xds, whose
// listen field is lf.
func (p *parser) xdsSecurity(m *yamlfield.Mapping, lf yamlfield.Field, fd *FrontDoor) {
	x := &fd.XDSSecurity
	if f, ok := m.Get("insecure"); ok {
		x.Insecure, _ = p.Boolean(f)
	}
	tf, hasTLS := m.Get("tls")
	if hasTLS {
		if tm, ok := p.Mapping(tf, xdsTLSKeys); ok {
			for _, k := range []struct {
				key string
				to  *string
			}{{"cert_file", &x.CertFile}, {"key_file", &x.KeyFile}, {"client_ca_file", &x.ClientCAFile}} {
				kf, ok := p.Require(tm, k.key)
				if !ok {
					continue
				}
				v, ok := p.Str(kf)
				if !ok {
					continue
				}
				if strings.TrimSpace(v) == "" {
					p.Errorf(kf, "empty path")
					continue
				}
				if !filepath.IsAbs(v) {
					v = filepath.Join(filepath.Dir(p.File), v)
				}
				*k.to = v
			}
		}
	}
	switch {
	case hasTLS && x.Insecure:
		p.Errorf(tf, "both tls and insecure: true are set; choose one")
	case !hasTLS && !x.Insecure && fd.XDSListen != "" && !loopback.Is(fd.XDSListen):
		p.Errorf(lf, "%s is not a loopback address: set tls (cert_file, key_file, client_ca_file) for mutual TLS with the proxies, or insecure: true on a trusted network",
			fd.XDSListen)
	}
}
