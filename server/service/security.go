package service

import (
	"crypto/tls"
	"fmt"
	"github.com/grayzone/grayzone/internal/bearer"
	"github.com/grayzone/grayzone/internal/loglimit"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
)

// guardMetrics closes /metrics to callers without a token unless the
// configuration opens it (auth.metrics_open, else as open_reads).
func (s *Service) guardMetrics(h http.Handler) http.Handler {
	if !s.cfg.Auth.MetricsNeedToken() {
		return h
	}
	refused := loglimit.New(s.log) // anyone can cause these lines
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := api.Authenticate(r, func() []config.Token { return s.tokens }, bearer.Read); !ok {
			refused.Warn(r.Context(), "metrics: unauthorized request", slog.String("remote", r.RemoteAddr))
			w.Header().Set("WWW-Authenticate", `Bearer realm="grayzone"`)
			http.Error(w, "missing or unaccepted bearer token (auth.metrics_open is false)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// serveAPI serves the API and dashboard on ln: HTTPS when the
// configuration names a certificate, plain HTTP otherwise.
func (s *Service) serveAPI(srv *http.Server, ln net.Listener) error {
	// Anyone who reaches the listener may connect: bound what they can hold.
	srv.MaxHeaderBytes = frontdoor.DefaultMaxHeaderBytes - 4096
	srv.IdleTimeout = frontdoor.DefaultIdleTimeout
	srv.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug) // TLS handshake noise and the like
	if s.certs == nil {
		return srv.Serve(ln)
	}
	srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certs.GetCertificate}
	return srv.ServeTLS(ln, "", "")
}

// APIURL is the API's base URL (https:// with a certificate), once Run has bound it.
func (s *Service) APIURL() string {
	if s.certs != nil {
		return "https://" + s.APIAddr()
	}
	return "http://" + s.APIAddr()
}

// proxyOptions are the front door's options for the resource.
func (r *resource) proxyOptions() frontdoor.ProxyOptions {
	fd := r.cfg.FrontDoor
	l := fd.Limits
	return frontdoor.ProxyOptions{Regional: fd.Regional, Zonal: fd.Zonal, Log: r.s.log, Recorder: r.rec, RecordZonal: fd.RecordZonal, NetHTTPOnly: r.s.netHTTPOnly,
		Limits: frontdoor.Limits{MaxHeaderBytes: l.MaxHeaderBytes, HeaderTimeout: l.HeaderTimeout, BodyTimeout: l.BodyTimeout, IdleTimeout: l.IdleTimeout}}
}

// CertReloader serves a certificate and key from files and re-reads them
// when either file's modification time changes, so a renewed certificate
// takes effect without a restart. A renewal that cannot be loaded (say, a
// key written after its certificate) keeps the previous certificate in
// service and is tried again on the next handshake.
type CertReloader struct {
	certFile, keyFile string
	now               func() time.Time

	mu              sync.Mutex
	cert            *tls.Certificate
	certMod, keyMod time.Time
	checked         time.Time
	lastErr         error
}

// certCheckEvery bounds how often handshakes stat the files.
const certCheckEvery = time.Second

// NewCertReloader loads the pair once; an error here is a configuration error.
func NewCertReloader(certFile, keyFile string, now func() time.Time) (*CertReloader, error) {
	if now == nil {
		now = time.Now
	}
	c := &CertReloader{certFile: certFile, keyFile: keyFile, now: now}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *CertReloader) reload() error {
	cm, err := modTime(c.certFile)
	if err != nil {
		return err
	}
	km, err := modTime(c.keyFile)
	if err != nil {
		return err
	}
	if c.cert != nil && cm.Equal(c.certMod) && km.Equal(c.keyMod) {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls_cert_file %s, tls_key_file %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert, c.certMod, c.keyMod = &cert, cm, km
	return nil
}

func modTime(name string) (time.Time, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// GetCertificate is tls.Config.GetCertificate.
func (c *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); now.Sub(c.checked) >= certCheckEvery {
		c.checked = now
		c.lastErr = c.reload()
	}
	return c.cert, nil
}

// Err is the last reload's error, nil when the files in service are current.
func (c *CertReloader) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}
