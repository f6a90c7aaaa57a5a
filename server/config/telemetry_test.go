package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/internal/bearer"
)

const telemetryDoc = `    telemetry:
      max_instances: 500
      max_operations: 20
      sources:
        - {type: otlp, http: 127.0.0.1:4318, grpc: 127.0.0.1:4317, attributes: {zone: [my.zone, cloud.zone]}}
        - {type: prometheus, url: "http://127.0.0.1:9090", interval: 1s, labels: {operation: handler}}
        - {type: emf, file: app.emf.log, listen: 127.0.0.1:8125}
        - {type: emf, name: emf-http, listen: 127.0.0.1:8126, dimensions: {zone: AvailabilityZone}, metrics: {latency: Latency}}
`

func TestTelemetrySection(t *testing.T) {
	c, err := Parse("etc/serve.yaml", []byte(base+telemetryDoc))
	if err != nil {
		t.Fatal(err)
	}
	tm := c.Resources[0].Telemetry
	if tm.MaxInstances != 500 || tm.MaxOperations != 20 || tm.MaxPending != DefaultMaxPending || len(tm.Sources) != 4 {
		t.Fatalf("telemetry: %+v", tm)
	}
	o, p, e, e2 := tm.Sources[0], tm.Sources[1], tm.Sources[2], tm.Sources[3]
	wantAttrs := DefaultOTLPAttributes()
	wantAttrs.Zone = []string{"my.zone", "cloud.zone"}
	if o.Name != "otlp" || o.HTTP != "127.0.0.1:4318" || o.GRPC != "127.0.0.1:4317" || !reflect.DeepEqual(o.Attributes, wantAttrs) || o.DurationMetric != "http.server.request.duration" {
		t.Errorf("otlp: %+v", o)
	}
	if p.URL != "http://127.0.0.1:9090" || p.Interval != time.Second || p.Labels.Operation[0] != "handler" || p.Labels.Zone[0] != "zone" || p.Queries != DefaultPrometheusQueries() {
		t.Errorf("prometheus: %+v", p)
	}
	if e.File != "etc/app.emf.log" || e.Listen != "127.0.0.1:8125" || e.Interval != time.Second || e.Metrics != DefaultEMFMetrics() {
		t.Errorf("emf: %+v", e)
	}
	if e2.Name != "emf-http" || e2.Dimensions.Zone[0] != "AvailabilityZone" || e2.Dimensions.Instance[0] != "InstanceId" || e2.Metrics.Latency != "Latency" || e2.Metrics.Success != "Success" {
		t.Errorf("emf-http: %+v", e2)
	}
	// Without the section: defaults and no sources.
	c, _ = Parse("serve.yaml", []byte(base))
	if tm := c.Resources[0].Telemetry; tm.MaxInstances != DefaultMaxInstances || len(tm.Sources) != 0 {
		t.Errorf("default telemetry: %+v", tm)
	}
}

func TestTelemetryErrors(t *testing.T) {
	for _, tc := range []struct{ old, new, want string }{
		{"max_instances: 500", "max_instances: 0", "serve.yaml:24: resources[0].telemetry.max_instances: 0 is out of range (1..10000000)"},
		{"{type: otlp, http: 127.0.0.1:4318, grpc: 127.0.0.1:4317, attributes: {zone: [my.zone, cloud.zone]}}", "{type: otlp}",
			"serve.yaml:27: resources[0].telemetry.sources[0].type: an otlp source needs http or grpc"},
		{"type: otlp,", "type: statsd,", `serve.yaml:27: resources[0].telemetry.sources[0].type: unknown source type "statsd" (want one of otlp, prometheus, emf)`},
		{"{type: emf, file: app.emf.log, listen: 127.0.0.1:8125}", "{type: emf, file: a.log, url: x}",
			"serve.yaml:29: resources[0].telemetry.sources[2].url: unknown key (expected one of type, name, file, listen, interval, dimensions, metrics, tls, insecure, limits)"},
		{`url: "http://127.0.0.1:9090"`, `url: "127.0.0.1:9090"`, `resources[0].telemetry.sources[1].url: "127.0.0.1:9090" is not an http(s) URL`},
		{"listen: 127.0.0.1:8126", "listen: 127.0.0.1:8125", "resources[0].telemetry.sources[3].listen: address 127.0.0.1:8125 is already used by resources[0].telemetry.sources[2].listen"},
		{"name: emf-http, ", "", `resources[0].telemetry.sources[3].type: a second source named "emf" (first at line 29)`},
		{"grpc: 127.0.0.1:4317", "grpc: 127.0.0.1:8081", "address 127.0.0.1:8081 is already used by resources[0].frontdoor.regional"},
	} {
		doc := strings.Replace(base+telemetryDoc, tc.old, tc.new, 1)
		_, err := Parse("serve.yaml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: err = %v, want %q", tc.old, tc.new, err, tc.want)
		}
	}
}

// TestReceiverSecurity: a listening source's tls, insecure and limits are
// read; the Prometheus source's bearer_token_file, tls and selector too.
func TestReceiverSecurity(t *testing.T) {
	doc := strings.Replace(base+telemetryDoc, "{type: otlp, http: 127.0.0.1:4318, grpc: 127.0.0.1:4317, attributes: {zone: [my.zone, cloud.zone]}}",
		"{type: otlp, http: 0.0.0.0:4318, tls: {cert_file: c.pem, key_file: k.pem}, limits: {max_body_bytes: 1048576, max_in_flight: 4, body_timeout: 5s}}", 1)
	doc = strings.Replace(doc, `{type: prometheus, url: "http://127.0.0.1:9090", interval: 1s, labels: {operation: handler}}`,
		`{type: prometheus, url: "https://p:9090", selector: 'job="checkout"', bearer_token_file: prom.token, tls: {ca_file: ca.pem, server_name: prom}}`, 1)
	doc = strings.Replace(doc, "{type: emf, file: app.emf.log, listen: 127.0.0.1:8125}", "{type: emf, file: app.emf.log, listen: 127.0.0.1:8125, insecure: true}", 1)
	c, err := Parse("etc/serve.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	o, p, e := c.Resources[0].Telemetry.Sources[0], c.Resources[0].Telemetry.Sources[1], c.Resources[0].Telemetry.Sources[2]
	want := Receiver{TLS: TLS{CertFile: "etc/c.pem", KeyFile: "etc/k.pem"}, Limits: ReceiverLimits{MaxBodyBytes: 1 << 20, MaxInFlight: 4, BodyTimeout: 5 * time.Second}}
	if o.Receiver != want || o.At != "etc/serve.yaml:27: resources[0].telemetry.sources[0]" {
		t.Errorf("otlp receiver %+v at %q", o.Receiver, o.At)
	}
	if !e.Receiver.Insecure {
		t.Error("emf insecure not read")
	}
	if p.BearerTokenFile != "etc/prom.token" || p.ClientTLS != (ClientTLS{CAFile: "etc/ca.pem", ServerName: "prom"}) || !strings.Contains(p.Queries.Requests, `{job="checkout"}`) {
		t.Errorf("prometheus %+v", p)
	}
	// Credentials, once the tokens are known.
	ingest := []Token{{Name: "app", Secret: "x", Scopes: bearer.Ingest}}
	readOnly := []Token{{Name: "board", Secret: "x", Scopes: bearer.Read}}
	if err := c.CheckTelemetryCredentials(ingest); err != nil {
		t.Errorf("with an ingest token: %v", err)
	}
	err = c.CheckTelemetryCredentials(readOnly)
	if err == nil || !strings.HasPrefix(err.Error(), "etc/serve.yaml:27: resources[0].telemetry.sources[0].http: 0.0.0.0:4318 is not a loopback address") {
		t.Errorf("0.0.0.0 without an ingest token: %v", err)
	}
	c.Resources[0].Telemetry.Sources[0].Receiver.Insecure = true
	c.Resources[0].Telemetry.Sources[3].Receiver.Insecure = true
	if err := c.CheckTelemetryCredentials(nil); err != nil {
		t.Errorf("insecure sources, no tokens: %v", err)
	}
	for _, tc := range []struct{ old, new, want string }{
		{"tls: {cert_file: c.pem, key_file: k.pem}", "tls: {cert_file: c.pem}", "sources[0].tls.cert_file: set without key_file"},
		{"max_in_flight: 4", "max_in_flight: 0", "sources[0].limits.max_in_flight: 0 is out of range"},
		{"listen: 127.0.0.1:8125, insecure: true", "insecure: true", "sources[2].insecure: applies to listen only"},
		{`selector: 'job="checkout"'`, `selector: '{job="x"}'`, "sources[1].selector: "},
	} {
		_, err := Parse("serve.yaml", []byte(strings.Replace(doc, tc.old, tc.new, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.new, err, tc.want)
		}
	}
}

// TestTelemetryExample: examples/serve-telemetry.yaml parses, its OTLP and
// EMF listeners need a token and serve TLS, and examples/tokens.txt gives
// it an ingest-scoped token.
func TestTelemetryExample(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "examples", "serve-telemetry.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	srcs := c.Resources[0].Telemetry.Sources
	if len(srcs) != 2 || srcs[0].HTTP == "" || srcs[0].GRPC == "" || srcs[1].Listen == "" {
		t.Fatalf("sources %+v", srcs)
	}
	for _, s := range srcs {
		if s.Receiver.Insecure || !s.Receiver.TLS.Enabled() || !strings.HasSuffix(s.Receiver.TLS.CertFile, filepath.Join("examples", "telemetry-tls", "cert.pem")) {
			t.Errorf("%s: %+v", s.Name, s.Receiver)
		}
	}
	tokens, err := c.LoadTokens()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckTelemetryCredentials(tokens); err != nil {
		t.Fatal(err)
	}
	if app := TokensWith(tokens, bearer.Ingest); len(app) < 2 || app[1].Name != "app-telemetry" || app[1].Allows(bearer.Operate) {
		t.Errorf("ingest tokens %v", app)
	}
}
