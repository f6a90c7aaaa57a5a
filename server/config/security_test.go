package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSecuritySettings(t *testing.T) {
	doc := strings.Replace(base, "listen: 127.0.0.1:8080\nauth: {tokens_file: tokens.txt}",
		"listen: 127.0.0.1:8080\ntls_cert_file: tls/cert.pem\ntls_key_file: /etc/gz/key.pem\nauth: {tokens_file: tokens.txt, tokens: [\"ops:inline-token-0123456789\"], open_reads: false, metrics_open: true}", 1)
	doc = strings.Replace(doc, "      type: embedded\n", "      type: embedded\n      record_zonal: true\n      max_header_bytes: 16384\n      header_timeout: 2s\n      body_timeout: 10s\n      idle_timeout: 30s\n", 1)
	c, err := Parse(filepath.Join("etc", "serve.yaml"), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if want := (TLS{CertFile: filepath.Join("etc", "tls", "cert.pem"), KeyFile: "/etc/gz/key.pem"}); c.TLS != want || !c.TLS.Enabled() {
		t.Errorf("TLS = %+v, want %+v", c.TLS, want)
	}
	if c.Auth.OpenReads || c.Auth.MetricsNeedToken() {
		t.Errorf("auth: %+v: metrics_open must open /metrics alone", c.Auth)
	}
	if len(c.Auth.Tokens) != 1 || c.Auth.Tokens[0] != (Token{Name: "ops", Secret: "inline-token-0123456789"}) {
		t.Errorf("inline tokens: %#v", c.Auth.Tokens)
	}
	if !c.Resources[0].FrontDoor.RecordZonal {
		t.Error("record_zonal: true not read")
	}
	if want := (Limits{MaxHeaderBytes: 16384, HeaderTimeout: 2 * time.Second, BodyTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second}); c.Resources[0].FrontDoor.Limits != want {
		t.Errorf("limits = %+v, want %+v", c.Resources[0].FrontDoor.Limits, want)
	}
	// Defaults: plain HTTP; /metrics as open as other reads; limits left
	// to the front door's defaults.
	c, err = Parse("serve.yaml", []byte(strings.Replace(base, "{tokens_file: tokens.txt}", "{tokens_file: tokens.txt, open_reads: false}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS.Enabled() || !c.Auth.MetricsNeedToken() || c.Resources[0].FrontDoor.Limits != (Limits{}) || c.Resources[0].FrontDoor.RecordZonal {
		t.Errorf("defaults: TLS %+v, metrics need token %v, limits %+v", c.TLS, c.Auth.MetricsNeedToken(), c.Resources[0].FrontDoor.Limits)
	}
}

func TestSecuritySettingsErrors(t *testing.T) {
	for _, tt := range []struct{ old, new, want string }{
		{"listen: 127.0.0.1:8080\n", "listen: 127.0.0.1:8080\ntls_cert_file: c.pem\n", "serve.yaml:2: tls_cert_file: set without tls_key_file (both are needed for HTTPS)"},
		{"listen: 127.0.0.1:8080\n", "listen: 127.0.0.1:8080\ntls_key_file: k.pem\n", "serve.yaml:2: tls_key_file: set without tls_cert_file (both are needed for HTTPS)"},
		{"listen: 127.0.0.1:8080\n", "listen: 127.0.0.1:8080\ntls_cert_file: \"\"\ntls_key_file: k.pem\n", "serve.yaml:2: tls_cert_file: must not be empty (omit tls_cert_file and tls_key_file for plain HTTP)"},
		{"{tokens_file: tokens.txt}", "{tokens_file: tokens.txt, metrics_open: sometimes}", "serve.yaml:2: auth.metrics_open: must be true or false, got string \"sometimes\""},
		{"{tokens_file: tokens.txt}", "{tokens: [\"a b:inline-token-0123456789\"]}", "serve.yaml:2: auth.tokens[0]: invalid token name before the colon (names use only A-Z a-z 0-9 . _ - and are at most 63 characters)"},
		{"{tokens_file: tokens.txt}", "{tokens: [\"x:inline-token-0123456789\", \"x:inline-token-9876543210\"]}", "serve.yaml:2: auth.tokens[1]: duplicate token name \"x\" (first at line 2)"},
		{"      type: embedded\n", "      type: embedded\n      max_header_bytes: 1024\n", "serve.yaml:8: resources[0].frontdoor.max_header_bytes: 1024 is out of range (8192..1048576)"},
		{"      type: embedded\n", "      type: embedded\n      body_timeout: 0s\n", "serve.yaml:8: resources[0].frontdoor.body_timeout: 0s is out of range (100ms..1h)"},
	} {
		_, err := Parse("serve.yaml", []byte(strings.Replace(base, tt.old, tt.new, 1)))
		if err == nil || err.Error() != tt.want {
			t.Errorf("got  %v\nwant %s", err, tt.want)
		}
	}
}
