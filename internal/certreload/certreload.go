// Package certreload serves TLS material from files and re-reads them when
// they change, so a renewed certificate or CA bundle takes effect without a
// restart: the API's certificate, and both ends of xDS with mutual TLS
// (serve's xDS server, grayzone frontdoor). A renewal that cannot be loaded
// (say, a key written after its certificate) keeps the previous material in
// service and is tried again on the next handshake.
package certreload

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"
)

// CheckEvery bounds how often handshakes stat the files.
const CheckEvery = time.Second

// watched is a set of files loaded together, re-loaded when any of their
// modification times changes, at most once per CheckEvery.
type watched struct {
	files []string
	now   func() time.Time
	load  func() error // parses the files and keeps the result; called under mu

	mu      sync.Mutex
	mods    []time.Time
	loaded  bool
	checked time.Time
	lastErr error
}

func (w *watched) reload() error {
	mods := make([]time.Time, len(w.files))
	for i, f := range w.files {
		fi, err := os.Stat(f)
		if err != nil {
			return err
		}
		mods[i] = fi.ModTime()
	}
	if w.loaded && equalTimes(mods, w.mods) {
		return nil
	}
	if err := w.load(); err != nil {
		return err
	}
	w.mods, w.loaded = mods, true
	return nil
}

func equalTimes(a, b []time.Time) bool {
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return len(a) == len(b)
}

// check re-loads the files when it is time to look; call with mu held.
func (w *watched) check() {
	if now := w.now(); now.Sub(w.checked) >= CheckEvery {
		w.checked = now
		w.lastErr = w.reload()
	}
}

// Err is the last reload's error, nil when the files in service are current.
func (w *watched) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// Cert is a certificate and its key, from files.
type Cert struct {
	watched
	cert *tls.Certificate
}

// NewCert loads the pair once; an error here is a configuration error. now
// is the clock that paces the checks (nil: time.Now).
func NewCert(certFile, keyFile string, now func() time.Time) (*Cert, error) {
	if now == nil {
		now = time.Now
	}
	c := &Cert{}
	c.watched = watched{files: []string{certFile, keyFile}, now: now, load: func() error {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("cert_file %s, key_file %s: %w", certFile, keyFile, err)
		}
		c.cert = &cert
		return nil
	}}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cert) current() *tls.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.check()
	return c.cert
}

// GetCertificate is tls.Config.GetCertificate (a server's certificate).
func (c *Cert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current(), nil
}

// GetClientCertificate is tls.Config.GetClientCertificate (a client's).
func (c *Cert) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return c.current(), nil
}

// Pool is a bundle of CA certificates (PEM), from a file.
type Pool struct {
	watched
	pool *x509.CertPool
}

// NewPool loads the bundle once; an error here is a configuration error.
func NewPool(file string, now func() time.Time) (*Pool, error) {
	if now == nil {
		now = time.Now
	}
	p := &Pool{}
	p.watched = watched{files: []string{file}, now: now, load: func() error {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return fmt.Errorf("ca file %s: no PEM certificate in it", file)
		}
		p.pool = pool
		return nil
	}}
	if err := p.reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// Current is the bundle in service.
func (p *Pool) Current() *x509.CertPool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.check()
	return p.pool
}

// MutualServer is a server's TLS configuration that presents cert and
// requires a client certificate signed by a CA of clientCAs; both are
// re-read on change.
func MutualServer(cert *Cert, clientCAs *Pool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return &tls.Config{
				MinVersion:     tls.VersionTLS12,
				GetCertificate: cert.GetCertificate,
				ClientAuth:     tls.RequireAndVerifyClientCert,
				ClientCAs:      clientCAs.Current(),
			}, nil
		},
	}
}

// MutualClient is a client's TLS configuration that verifies the server
// against roots (and serverName, when not empty; else the host dialled)
// and presents cert. The roots are those in service when it is called:
// call it for each new connection.
func MutualClient(cert *Cert, roots *Pool, serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		RootCAs:              roots.Current(),
		ServerName:           serverName,
		GetClientCertificate: cert.GetClientCertificate,
	}
}
