package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
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
			"serve.yaml:29: resources[0].telemetry.sources[2].url: unknown key (expected one of type, name, file, listen, interval, dimensions, metrics)"},
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
