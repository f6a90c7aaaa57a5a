package service

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/grayzone/grayzone/internal/bearer"
	"github.com/grayzone/grayzone/internal/loglimit"
	"github.com/grayzone/grayzone/telemetry/listener"

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

// Bounds of the API's listener (docs/security.md).
const (
	apiReadTimeout    = 30 * time.Second
	apiMaxConnections = 1024
)

// serveAPI serves the API and dashboard on ln: HTTPS when the
// configuration names a certificate, plain HTTP otherwise.
func (s *Service) serveAPI(srv *http.Server, ln net.Listener) error {
	// Anyone who reaches the listener may connect: bound what they can hold.
	srv.MaxHeaderBytes = frontdoor.DefaultMaxHeaderBytes - 4096
	srv.IdleTimeout = frontdoor.DefaultIdleTimeout
	// A request's head and body within apiReadTimeout (the event stream's
	// long response is writing, which this does not bound), and at most
	// apiMaxConnections at once: more wait in the kernel's backlog.
	srv.ReadTimeout = apiReadTimeout
	ln = listener.Cap(ln, apiMaxConnections)
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
		Limits: frontdoor.Limits{MaxHeaderBytes: l.MaxHeaderBytes, HeaderTimeout: l.HeaderTimeout, BodyTimeout: l.BodyTimeout, IdleTimeout: l.IdleTimeout,
			MaxConnections: l.MaxConnections, ResponseTimeout: l.ResponseTimeout}}
}
