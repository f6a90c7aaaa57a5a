package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const haproxyBase = `listen: 127.0.0.1:8080
auth: {tokens_file: tokens.txt}
resources:
  - name: web
    zones: [az1, az2]
    frontdoor:
      type: haproxy
      runtime_api: /run/haproxy/admin.sock
      reconcile_interval: 2s
      log_listen: 127.0.0.1:5140
      backends:
        web: {az1: [w1, w2], az2: [w3, w4]}
        api: {az1: [w1], az2: [w3]}
`

func TestHAProxyFrontDoor(t *testing.T) {
	c, err := Parse("serve.yaml", []byte(haproxyBase))
	if err != nil {
		t.Fatal(err)
	}
	fd := c.Resources[0].FrontDoor
	want := HAProxy{RuntimeAPI: "/run/haproxy/admin.sock", ReconcileInterval: 2 * time.Second, ShiftState: ShiftStateDrain, LogListen: "127.0.0.1:5140",
		Backends: map[string]map[string][]string{"web": {"az1": {"w1", "w2"}, "az2": {"w3", "w4"}}, "api": {"az1": {"w1"}, "az2": {"w3"}}}}
	if !reflect.DeepEqual(fd.HAProxy, want) {
		t.Fatalf("haproxy: %+v\nwant %+v", fd.HAProxy, want)
	}
	// Targets are the distinct servers per zone: min_capacity and
	// min_instances count them.
	if got := fd.Targets; len(got) != 4 || got[0] != (Target{ID: "w1", Zone: "az1"}) || got[3] != (Target{ID: "w4", Zone: "az2"}) {
		t.Fatalf("targets: %+v", got)
	}
}

func TestHAProxyFrontDoorErrors(t *testing.T) {
	tests := []struct{ old, new, want string }{
		{"      runtime_api: /run/haproxy/admin.sock\n", "", "serve.yaml:6: resources[0].frontdoor.runtime_api: required"},
		{"reconcile_interval: 2s", "reconcile_interval: 2", "serve.yaml:9: resources[0].frontdoor.reconcile_interval: 2 is not a valid duration"},
		{"reconcile_interval: 2s", "shift_state: off", `serve.yaml:9: resources[0].frontdoor.shift_state: "off": want drain`},
		{"reconcile_interval: 2s", "regional: 127.0.0.1:1", `serve.yaml:9: resources[0].frontdoor.regional: not a key of front door type "haproxy"`},
		{"api: {az1: [w1], az2: [w3]}", "api: {az1: [w3], az2: [w1]}", `serve.yaml:13: resources[0].frontdoor.backends.api.az1[0]: server "w3" is already in zone "az2"`},
		{"api: {az1: [w1], az2: [w3]}", "api: {az9: [w1]}", `serve.yaml:13: resources[0].frontdoor.backends.api.az9: unknown zone (zones: az1, az2)`},
		{"api: {az1: [w1], az2: [w3]}", "api: {az1: [w1, w1]}", `serve.yaml:13: resources[0].frontdoor.backends.api.az1[1]: duplicate server "w1"`},
		{"api: {az1: [w1], az2: [w3]}", "api: {az1: [w 1]}", `serve.yaml:13: resources[0].frontdoor.backends.api.az1[0]: "w 1" is not an HAProxy server name`},
		{"        web: {az1: [w1, w2], az2: [w3, w4]}\n", "", `serve.yaml:11: resources[0].frontdoor.backends: zone "az1" has 1 target(s), fewer than detector.min_instances`},
		{"type: haproxy", "type: embedded", `serve.yaml:8: resources[0].frontdoor.runtime_api: not a key of front door type "embedded"`},
	}
	for _, tt := range tests {
		doc := strings.Replace(haproxyBase, tt.old, tt.new, 1)
		_, err := Parse("serve.yaml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s -> %s: got %v, want %q", tt.old, tt.new, err, tt.want)
		}
	}
}

func TestHAProxyExample(t *testing.T) {
	c, err := Load("../../examples/serve-haproxy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if fd := c.Resources[0].FrontDoor; fd.Type != FrontDoorHAProxy || len(fd.Targets) != 6 || fd.HAProxy.RuntimeAPI != "/run/haproxy/admin.sock" {
		t.Fatalf("front door: %+v", fd)
	}
}

func TestXDSFrontDoor(t *testing.T) {
	doc := `listen: 127.0.0.1:8080
resources:
  - name: web
    zones: [az1, az2]
    frontdoor:
      type: xds
      listen: 127.0.0.1:18000
      health_check: {interval: 1s}
      targets:
        - {id: w1, zone: az1, addr: 127.0.0.1:9001}
        - {id: w2, zone: az1, addr: 127.0.0.1:9002}
        - {id: w3, zone: az2, addr: 127.0.0.1:9003}
        - {id: w4, zone: az2, addr: 127.0.0.1:9004}
`
	c, err := Parse("serve.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	fd := c.Resources[0].FrontDoor
	if fd.Type != FrontDoorXDS || fd.XDSListen != "127.0.0.1:18000" || len(fd.Targets) != 4 || fd.HealthCheck.Interval != time.Second {
		t.Fatalf("front door: %+v", fd)
	}
	for _, tt := range []struct{ old, new, want string }{
		{"      listen: 127.0.0.1:18000\n", "", "serve.yaml:5: resources[0].frontdoor.listen: required"},
		{"listen: 127.0.0.1:18000", "listen: 127.0.0.1:8080", "serve.yaml:7: resources[0].frontdoor.listen: address 127.0.0.1:8080 is already used by listen"},
		{"listen: 127.0.0.1:18000", "regional: 127.0.0.1:1", `serve.yaml:7: resources[0].frontdoor.regional: not a key of front door type "xds"`},
		{"type: xds", "type: haproxy", `serve.yaml:7: resources[0].frontdoor.listen: not a key of front door type "haproxy"`},
		// Off loopback: mutual TLS, or insecure: true.
		{"listen: 127.0.0.1:18000", "listen: 0.0.0.0:18000", "serve.yaml:7: resources[0].frontdoor.listen: 0.0.0.0:18000 is not a loopback address: set tls"},
		{"listen: 127.0.0.1:18000", "listen: :18000", "resources[0].frontdoor.listen: :18000 is not a loopback address"},
		{"listen: 127.0.0.1:18000", "listen: 0.0.0.0:18000\n      insecure: true", ""},
		{"listen: 127.0.0.1:18000", "listen: 0.0.0.0:18000\n      tls: {cert_file: s.crt, key_file: s.key, client_ca_file: ca.crt}", ""},
		{"listen: 127.0.0.1:18000", "listen: 0.0.0.0:18000\n      tls: {cert_file: s.crt, key_file: s.key}", "serve.yaml:8: resources[0].frontdoor.tls.client_ca_file: required"},
		{"listen: 127.0.0.1:18000", "listen: 127.0.0.1:18000\n      insecure: true\n      tls: {cert_file: s.crt, key_file: s.key, client_ca_file: ca.crt}", "frontdoor.tls: both tls and insecure: true are set"},
		{"listen: 127.0.0.1:18000", "listen: 127.0.0.1:18000\n      max_connections: 5", `resources[0].frontdoor.max_connections: not a key of front door type "xds"`},
	} {
		_, err := Parse("serve.yaml", []byte(strings.Replace(doc, tt.old, tt.new, 1)))
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s -> %s: %v", tt.old, tt.new, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s -> %s: got %v, want %q", tt.old, tt.new, err, tt.want)
		}
	}
}

func TestXDSExample(t *testing.T) {
	c, err := Load("../../examples/serve-xds.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if fd := c.Resources[0].FrontDoor; fd.Type != FrontDoorXDS || fd.XDSListen != "127.0.0.1:18000" || len(fd.Targets) != 6 {
		t.Fatalf("front door: %+v", fd)
	}
	if x := c.Resources[0].FrontDoor.XDSSecurity; !x.MutualTLS() || !strings.HasSuffix(x.ClientCAFile, "examples/certs/xds-ca.crt") || x.Insecure {
		t.Fatalf("the example's xDS is not mutual TLS: %+v", x)
	}
}

func TestHAProxyLogListenError(t *testing.T) {
	doc := strings.Replace(haproxyBase, "log_listen: 127.0.0.1:5140", "log_listen: 5140", 1)
	_, err := Parse("serve.yaml", []byte(doc))
	if err == nil || !strings.Contains(err.Error(), "serve.yaml:10: resources[0].frontdoor.log_listen:") {
		t.Fatalf("got %v", err)
	}
}
