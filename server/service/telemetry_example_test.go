package service_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/internal/certtest"
	"github.com/grayzone/grayzone/internal/freeport"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// TestTelemetryExampleRuns: examples/serve-telemetry.yaml, with an
// example-only certificate made here and its addresses moved to free
// ports, starts serve; OTLP over HTTPS and gRPC with TLS and EMF over HTTPS
// take the app-telemetry token's exports and refuse them without a token.
func TestTelemetryExampleRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pool := writeExampleCert(t, filepath.Join(dir, "telemetry-tls"))
	data, err := os.ReadFile("../../examples/serve-telemetry.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tokens, _ := os.ReadFile("../../examples/tokens.txt")
	os.WriteFile(filepath.Join(dir, "tokens.txt"), tokens, 0o600)
	otlpHTTP, otlpGRPC, emfAddr := freeport.Addr(t), freeport.Addr(t), freeport.Addr(t)
	cfg := strings.NewReplacer("127.0.0.1:4318", otlpHTTP, "127.0.0.1:4317", otlpGRPC, "127.0.0.1:8125", emfAddr,
		"127.0.0.1:8081", "127.0.0.1:0", "127.0.0.1:8091", "127.0.0.1:0", "127.0.0.1:8092", "127.0.0.1:0", "127.0.0.1:8093", "127.0.0.1:0", "use2-az", "z").Replace(string(data))
	path := filepath.Join(dir, "serve-telemetry.yaml")
	os.WriteFile(path, []byte(cfg), 0o644)
	s := startServe(t, "--config", path, "--data-dir", filepath.Join(dir, "data"))

	var app string
	for _, l := range strings.Split(string(tokens), "\n") {
		if rest, ok := strings.CutPrefix(l, "app-telemetry:"); ok {
			app, _, _ = strings.Cut(rest, ":")
		}
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	body, _ := forged(time.Now(), "ride").MarshalProto()
	for tok, want := range map[string]int{"": 401, app: 200} {
		req, _ := http.NewRequest("POST", "https://"+otlpHTTP+"/v1/metrics", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("OTLP/HTTPS token given %v: %d, want %d", tok != "", resp.StatusCode, want)
		}
		req, _ = http.NewRequest("POST", "https://"+emfAddr+"/", strings.NewReader(emfLine(time.Now().Add(-2*time.Second), `"Success":1,"Fault":0`)+"\n"))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if resp, err = client.Do(req); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want == 200 {
			want = 202
		}
		if resp.StatusCode != want {
			t.Errorf("EMF/HTTPS token given %v: %d, want %d", tok != "", resp.StatusCode, want)
		}
	}
	conn, err := grpc.NewClient(otlpGRPC, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := pmetricotlp.NewGRPCClient(conn).Export(ctx, forged(time.Now(), "ride")); status.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC/TLS without a token: %v", err)
	}
	if _, err := pmetricotlp.NewGRPCClient(conn).Export(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+app), forged(time.Now(), "ride")); err != nil {
		t.Errorf("gRPC/TLS with the app token: %v", err)
	}
	waitMetric(t, s, `grayzone_telemetry_requests_total{resource="web",source="otlp"}`, 100)
}

// writeExampleCert writes an example-only certificate for localhost and
// 127.0.0.1 (cert.pem, key.pem, as the example names them) into dir and
// returns a pool trusting it.
func writeExampleCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca := certtest.NewCA(t, dir, "example-ca")
	cert, key := ca.Issue(t, dir, "localhost")
	for from, to := range map[string]string{cert: "cert.pem", key: "key.pem"} {
		if err := os.Rename(from, filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
	pem, err := os.ReadFile(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("the example CA's certificate does not parse")
	}
	return pool
}
