package config

import (
	"fmt"
	"time"

	"github.com/grayzone/grayzone/internal/bearer"
	"github.com/grayzone/grayzone/internal/loopback"
	"github.com/grayzone/grayzone/internal/yamlfield"
)

// Receiver is how a telemetry listener (otlp http/grpc, emf listen) takes
// its clients: every request needs a bearer token with the ingest scope
// from serve's tokens (auth.tokens_file, auth.tokens), unless Insecure; TLS
// when a certificate is named; and the limits of telemetry/listener.
type Receiver struct {
	// Insecure: anyone who reaches the port may send (trusted networks
	// only; serve warns at start).
	Insecure bool
	TLS      TLS // cert_file, key_file: both or neither
	Limits   ReceiverLimits
}

// ReceiverLimits bound what a listener's clients can hold; zero means the
// default of telemetry/listener.
type ReceiverLimits struct {
	MaxBodyBytes   int64
	MaxConnections int
	MaxInFlight    int
	HeaderTimeout  time.Duration
	BodyTimeout    time.Duration
	IdleTimeout    time.Duration
}

// ClientTLS is how the Prometheus source verifies its server (ca_file,
// server_name) and, optionally, presents a client certificate.
type ClientTLS struct {
	CAFile, CertFile, KeyFile, ServerName string
}

var (
	receiverKeys    = []string{"tls", "insecure", "limits"}
	receiverTLSKeys = []string{"cert_file", "key_file"}
	limitKeys       = []string{"max_body_bytes", "max_connections", "max_in_flight", "header_timeout", "body_timeout", "idle_timeout"}
	promAuthKeys    = []string{"bearer_token_file", "tls"}
	clientTLSKeys   = []string{"ca_file", "cert_file", "key_file", "server_name"}
)

// receiver reads a listening source's tls, insecure and limits.
func (p *parser) receiver(m *yamlfield.Mapping, r *Receiver) {
	if f, ok := m.Get("insecure"); ok {
		r.Insecure, _ = p.Boolean(f)
	}
	if f, ok := m.Get("tls"); ok {
		if tm, ok := p.Mapping(f, receiverTLSKeys); ok {
			r.TLS.CertFile, r.TLS.KeyFile = p.certPair(tm, "cert_file", "key_file", "TLS", "omit tls for plain text")
		}
	}
	if f, ok := m.Get("limits"); ok {
		lm, ok := p.Mapping(f, limitKeys)
		if !ok {
			return
		}
		l := &r.Limits
		if v, ok := lm.Get("max_body_bytes"); ok {
			n, _ := p.IntIn(v, 1<<10, 256<<20)
			l.MaxBodyBytes = int64(n)
		}
		if v, ok := lm.Get("max_connections"); ok {
			l.MaxConnections, _ = p.IntIn(v, 1, 100_000)
		}
		if v, ok := lm.Get("max_in_flight"); ok {
			l.MaxInFlight, _ = p.IntIn(v, 1, 10_000)
		}
		p.timeouts(lm, &l.HeaderTimeout, &l.BodyTimeout, &l.IdleTimeout)
	}
}

// promAuth reads the Prometheus source's bearer_token_file and tls.
func (p *parser) promAuth(m *yamlfield.Mapping, s *Source) {
	if v, _, ok := p.filePath(m, "bearer_token_file", "omit it to send no token"); ok {
		s.BearerTokenFile = v
	}
	if f, ok := m.Get("tls"); ok {
		if tm, ok := p.Mapping(f, clientTLSKeys); ok {
			s.ClientTLS.CAFile, _, _ = p.filePath(tm, "ca_file", "omit it for the system's roots")
			s.ClientTLS.CertFile, s.ClientTLS.KeyFile = p.certPair(tm, "cert_file", "key_file", "a client certificate", "omit both for none")
			if v, ok := tm.Get("server_name"); ok {
				s.ClientTLS.ServerName, _ = p.Str(v)
			}
		}
	}
}

// Listens reports whether the source has a listener (and so a Receiver).
func (s Source) Listens() bool { return s.HTTP != "" || s.GRPC != "" || s.Listen != "" }

// Addrs are the source's listen addresses, each with its key.
func (s Source) Addrs() [][2]string {
	var out [][2]string
	for _, a := range [][2]string{{"http", s.HTTP}, {"grpc", s.GRPC}, {"listen", s.Listen}} {
		if a[1] != "" {
			out = append(out, a)
		}
	}
	return out
}

// CheckTelemetryCredentials checks, once serve's tokens are loaded, that
// every telemetry listener can authenticate its clients: it needs a token
// with the ingest scope, or insecure: true. Without either, a listener on a
// non-loopback address would be open to the network and one on loopback
// would refuse everything, so both are configuration errors naming the
// source's address.
func (c *Config) CheckTelemetryCredentials(tokens []Token) error {
	ingest := len(TokensWith(tokens, bearer.Ingest)) > 0
	for _, r := range c.Resources {
		for _, s := range r.Telemetry.Sources {
			if !s.Listens() || s.Receiver.Insecure || ingest {
				continue
			}
			key, addr := s.Addrs()[0][0], s.Addrs()[0][1]
			for _, a := range s.Addrs() {
				if !loopback.Is(a[1]) {
					key, addr = a[0], a[1]
				}
			}
			where := "a loopback address, where it would refuse every request"
			if !loopback.Is(addr) {
				where = "not a loopback address: it would take telemetry from the network without credentials"
			}
			return fmt.Errorf("%s.%s: %s is %s; no token has the ingest scope: add one to auth.tokens_file (name:token:ingest) or set insecure: true on the source (trusted networks only)",
				s.At, key, addr, where)
		}
	}
	return nil
}
