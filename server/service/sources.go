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
		a := sc.Attributes
		r, err := otlp.New(otlp.Config{Name: sc.Name, HTTP: sc.HTTP, GRPC: sc.GRPC, Sink: gate, Now: s.clock.Now, Log: log,
			Attributes:     otlp.Attributes{Zone: a.Zone, Instance: a.Instance, Operation: a.Operation, Status: a.Status},
			DurationMetric: sc.DurationMetric, RequestsMetric: sc.RequestsMetric, Security: sec, Limits: lim})
		if err != nil {
			return nil, err
		}
		return r.Run, nil
	case config.SourcePrometheus:
		l := sc.Labels
		tc, err := clientTLS(sc.ClientTLS)
		if err != nil {
			return nil, err
		}
		p, err := prometheus.New(prometheus.Config{Name: sc.Name, URL: sc.URL, Interval: sc.Interval, Requests: sc.Queries.Requests, Latency: sc.Queries.Latency,
			Labels: prometheus.Labels{Zone: first(l.Zone), Instance: first(l.Instance), Operation: first(l.Operation), Status: first(l.Status)},
			Sink:   gate, Now: s.clock.Now, Log: log, BearerTokenFile: sc.BearerTokenFile, TLS: tc})
		if err != nil {
			return nil, err
		}
		return p.Run, nil
	case config.SourceEMF:
		var sec listener.Security
		var lim listener.Limits
		if sc.Listen != "" {
			var err error
			if sec, lim, err = s.receiver(sc, log); err != nil {
				return nil, err
			}
		}
		d, m := sc.Dimensions, sc.Metrics
		e, err := emf.New(emf.Config{Name: sc.Name, File: sc.File, Listen: sc.Listen, Interval: sc.Interval, Sink: gate, Now: s.clock.Now, Log: log,
			Names: emf.Names{Zone: first(d.Zone), Instance: first(d.Instance), Operation: first(d.Operation),
				Success: m.Success, Fault: m.Fault, Error: m.Error, Latency: m.Latency},
			Security: sec, Limits: lim})
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

func first(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}
