package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/grayzone/grayzone/internal/bearer"
	"github.com/grayzone/grayzone/internal/certreload"
	"github.com/grayzone/grayzone/internal/loopback"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/telemetry/emf"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/listener"
	"github.com/grayzone/grayzone/telemetry/otlp"
	"github.com/grayzone/grayzone/telemetry/prometheus"
)

// newSource builds one configured telemetry source, binding its listeners
// now so a busy address fails serve at start; the returned function runs it
// until ctx ends.
func newSource(sc config.Source, gate *ingest.Gate, s *Service) (func(context.Context) error, error) {
	log := s.log.With("source", sc.Name)
	switch sc.Type {
	case config.SourceOTLP:
		sec, lim, err := s.receiver(sc, log)
		if err != nil {
			return nil, err
		}
		c := sc.OTLPConfig()
		c.Sink, c.Now, c.Log, c.Security, c.Limits = gate, s.clock.Now, log, sec, lim
		r, err := otlp.New(c)
		if err != nil {
			return nil, err
		}
		return r.Run, nil
	case config.SourcePrometheus:
		tc, err := clientTLS(sc.ClientTLS)
		if err != nil {
			return nil, err
		}
		c := sc.PrometheusConfig()
		c.Sink, c.Now, c.Log, c.TLS = gate, s.clock.Now, log, tc
		p, err := prometheus.New(c)
		if err != nil {
			return nil, err
		}
		return p.Run, nil
	case config.SourceEMF:
		c := sc.EMFConfig()
		c.Sink, c.Now, c.Log = gate, s.clock.Now, log
		if sc.Listen != "" {
			var err error
			if c.Security, c.Limits, err = s.receiver(sc, log); err != nil {
				return nil, err
			}
		}
		e, err := emf.New(c)
		if err != nil {
			return nil, err
		}
		return e.Run, nil
	}
	return nil, fmt.Errorf("type %q is not supported by this build", sc.Type)
}

// receiver is a listening source's security (serve's tokens, with the
// ingest scope; its certificate, reloaded on change) and limits. What is
// open or in clear is said at start.
func (s *Service) receiver(sc config.Source, log *slog.Logger) (listener.Security, listener.Limits, error) {
	rc := sc.Receiver
	l := rc.Limits
	lim := listener.Limits{MaxBodyBytes: l.MaxBodyBytes, MaxConnections: l.MaxConnections, MaxInFlight: l.MaxInFlight,
		HeaderTimeout: l.HeaderTimeout, BodyTimeout: l.BodyTimeout, IdleTimeout: l.IdleTimeout}
	sec := listener.Security{Insecure: rc.Insecure}
	if rc.TLS.Enabled() {
		certs, err := certreload.NewCert(rc.TLS.CertFile, rc.TLS.KeyFile, s.clock.Now)
		if err != nil {
			return sec, lim, err
		}
		sec.TLS = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
	}
	var open []string
	for _, a := range sc.Addrs() {
		if !loopback.Is(a[1]) {
			open = append(open, a[1])
		}
	}
	if rc.Insecure {
		log.Warn("telemetry source takes telemetry without a token (insecure: true): anyone who reaches it can feed the engine", "addrs", sc.Addrs(), "non_loopback", open)
		return sec, lim, nil
	}
	if len(config.TokensWith(s.tokens, bearer.Ingest)) == 0 {
		return sec, lim, fmt.Errorf("%s: no token has the ingest scope (auth.tokens_file: name:token:ingest), and insecure is not set", sc.At)
	}
	if len(open) > 0 && sec.TLS == nil {
		log.Warn("telemetry source listens beyond loopback without TLS: its tokens cross the network in clear (set tls.cert_file and tls.key_file)", "addrs", open)
	}
	sec.Tokens = func() []bearer.Token { return s.tokens }
	return sec, lim, nil
}

// clientTLS is the Prometheus source's TLS configuration (nil: defaults).
func clientTLS(c config.ClientTLS) (*tls.Config, error) {
	if c == (config.ClientTLS{}) {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate in it", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file, tls.key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
