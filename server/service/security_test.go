package service

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/internal/certreload"

	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/server/config"
)

// opsSecret is random-looking on purpose: the test looks for any four of its
// characters in a row, which a run of digits (a counter, a port) could match.
const opsSecret = "Zq7XvKw3RjTnPb8YmLcHsGfQ"

// runService starts a service from YAML (the resource part is fixed) with
// the API on a free port, and returns it with its fake clock.
func runService(t *testing.T, top string) (*Service, *clock.Fake) {
	t.Helper()
	dir := t.TempDir()
	y := top + `
resources:
  - name: web
    zones: [z1, z2, z3]
    frontdoor:
      type: embedded
      regional: 127.0.0.1:0
      zonal: {z1: 127.0.0.1:0, z2: 127.0.0.1:0, z3: 127.0.0.1:0}
      health_check: {interval: 5m, timeout: 1s}
      targets:
        - {id: z1-1, zone: z1, addr: 127.0.0.1:1}
        - {id: z2-1, zone: z2, addr: 127.0.0.1:2}
        - {id: z3-1, zone: z3, addr: 127.0.0.1:3}
    detector: {min_instances: 1}
`
	cfg, err := config.Parse(filepath.Join(dir, "serve.yaml"), []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = filepath.Join(dir, "data")
	tokens, err := cfg.LoadTokens()
	if err != nil {
		t.Fatal(err)
	}
	fc := clock.NewFake(t0)
	s, err := Open(context.Background(), Options{Config: cfg, Tokens: tokens, Log: slog.New(slog.DiscardHandler), Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		s.Close()
	})
	s.APIAddr()
	return s, fc
}

func call(t *testing.T, c *http.Client, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestClosedReadsCloseMetrics: with open_reads: false every read needs a
// token, /metrics included, unless metrics_open opens /metrics alone.
func TestClosedReadsCloseMetrics(t *testing.T) {
	reads := []string{"/v1/status", "/v1/alarms", "/v1/shifts", "/v1/audit", "/v1/practice", "/v1/decisions", "/v1/history?resource=web", "/metrics"}
	for _, c := range []struct {
		auth        string
		openMetrics bool
	}{
		{`{tokens: ["ops:` + opsSecret + `"], open_reads: false}`, false},
		{`{tokens: ["ops:` + opsSecret + `"], open_reads: false, metrics_open: true}`, true},
	} {
		s, _ := runService(t, "listen: 127.0.0.1:0\nauth: "+c.auth)
		base := s.APIURL()
		for _, p := range reads {
			code, _ := call(t, http.DefaultClient, "GET", base+p, "", "")
			want := http.StatusUnauthorized
			if p == "/metrics" && c.openMetrics {
				want = http.StatusOK
			}
			if code != want {
				t.Errorf("%s: GET %s without a token: %d, want %d", c.auth, p, code, want)
			}
			if code, _ := call(t, http.DefaultClient, "GET", base+p, "wrong-token-0123456789", ""); code != want {
				t.Errorf("%s: GET %s with a wrong token: %d, want %d", c.auth, p, code, want)
			}
			if code, body := call(t, http.DefaultClient, "GET", base+p, opsSecret, ""); code != http.StatusOK {
				t.Errorf("%s: GET %s with the token: %d %s", c.auth, p, code, body)
			}
		}
		if code, _ := call(t, http.DefaultClient, "GET", base+"/healthz", "", ""); code != http.StatusOK {
			t.Errorf("healthz: %d", code)
		}
	}
}

// TestNoPartOfATokenIsShown: a shift started and ended with a named token
// shows the name in the shift and the audit log; no part of the token
// appears in any answer or in the state on disk.
func TestNoPartOfATokenIsShown(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.txt")
	if err := os.WriteFile(tokens, []byte("# ops team\nops:"+opsSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := runService(t, "listen: 127.0.0.1:0\nauth: {tokens_file: "+tokens+"}")
	base := s.APIURL()
	code, body := call(t, http.DefaultClient, "POST", base+"/v1/shifts", opsSecret, `{"resource":"web","away_from":"z2","expires_in":"30m","comment":"drill"}`)
	if code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("start: %d %s", code, body)
	}
	if !strings.Contains(body, `"started_by":"ops"`) {
		t.Errorf("started_by is not the token's name: %s", body)
	}
	var seen strings.Builder
	seen.WriteString(body)
	_, shifts := call(t, http.DefaultClient, "GET", base+"/v1/shifts", "", "")
	id := shifts[strings.Index(shifts, `"id":"`)+6:]
	id = id[:strings.IndexByte(id, '"')]
	for _, c := range []struct{ method, path string }{{"POST", "/v1/shifts/" + id + "/cancel"}, {"GET", "/v1/shifts"}, {"GET", "/v1/audit"}, {"GET", "/v1/status"}, {"GET", "/metrics"}} {
		_, b := call(t, http.DefaultClient, c.method, base+c.path, opsSecret, "")
		seen.WriteString(b)
	}
	all := seen.String()
	if !strings.Contains(all, `"ended_by":"ops"`) || !strings.Contains(all, `"actor":"ops"`) {
		t.Errorf("the shift and audit log do not name ops:\n%s", all)
	}
	// Any 4 consecutive characters of the secret would be a part of it.
	for i := 0; i+4 <= len(opsSecret); i++ {
		if part := opsSecret[i : i+4]; strings.Contains(all, part) {
			t.Fatalf("answers show %q, part of the token", part)
		}
	}
	filepath.WalkDir(s.cfg.DataDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if b, _ := os.ReadFile(p); strings.Contains(string(b), opsSecret[:8]) {
			t.Errorf("%s holds part of the token", p)
		}
		return nil
	})
}

// writeCert writes a new self-signed certificate for 127.0.0.1 and its key,
// with modification time mod, and returns the certificate.
func writeCert(t *testing.T, certFile, keyFile, cn string, mod time.Time) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// tlsClient trusts exactly cert.
func tlsClient(cert *x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
}

// TestTLSServesAndReloads: with tls_cert_file and tls_key_file the API is
// HTTPS only; replacing the files changes the certificate served without
// a restart; a broken replacement keeps the last good one in service.
func TestTLSServesAndReloads(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := writeCert(t, certFile, keyFile, "first", time.Now().Add(-time.Hour))
	s, fc := runService(t, fmt.Sprintf("listen: 127.0.0.1:0\ntls_cert_file: %s\ntls_key_file: %s\nauth: {tokens: [\"ops:%s\"]}", certFile, keyFile, opsSecret))
	base := s.APIURL()
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("API URL %s", base)
	}
	served := func(c *http.Client) (string, error) {
		resp, err := c.Get(base + "/healthz")
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Subject.CommonName, nil
	}
	if cn, err := served(tlsClient(first)); err != nil || cn != "first" {
		t.Fatalf("served %q, %v", cn, err)
	}
	// Plain HTTP gets no API.
	if code, _ := call(t, http.DefaultClient, "GET", "http://"+s.APIAddr()+"/v1/status", "", ""); code == http.StatusOK {
		t.Error("plain HTTP answered 200")
	}
	// A renewal: new files, new modification time.
	second := writeCert(t, certFile, keyFile, "second", time.Now())
	fc.Advance(certreload.CheckEvery)
	if cn, err := served(tlsClient(second)); err != nil || cn != "second" {
		t.Fatalf("after the renewal: served %q, %v", cn, err)
	}
	if _, err := served(tlsClient(first)); err == nil {
		t.Error("a client trusting only the first certificate still connects")
	}
	// A broken renewal (half written): the last good certificate stays.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\ngarbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(certFile, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	fc.Advance(certreload.CheckEvery)
	if cn, err := served(tlsClient(second)); err != nil || cn != "second" {
		t.Fatalf("after a broken renewal: served %q, %v", cn, err)
	}
	if s.certs.Err() == nil {
		t.Error("the broken renewal's error is not reported")
	}
}

// TestTLSBadFilesRefuseToStart: a certificate that cannot be loaded is an
// error at start, not a plain-HTTP fallback.
func TestTLSBadFilesRefuseToStart(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "serve.yaml"), []byte(`tls_cert_file: missing.crt
tls_key_file: missing.key
resources:
  - name: web
    zones: [z1, z2]
    frontdoor:
      type: embedded
      regional: 127.0.0.1:0
      zonal: {z1: 127.0.0.1:0, z2: 127.0.0.1:0}
      targets:
        - {id: z1-1, zone: z1, addr: 127.0.0.1:1}
        - {id: z2-1, zone: z2, addr: 127.0.0.1:2}
    detector: {min_instances: 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = filepath.Join(dir, "data")
	if _, err := Open(context.Background(), Options{Config: cfg, Log: slog.New(slog.DiscardHandler)}); err == nil || !strings.Contains(err.Error(), "missing.crt") {
		t.Errorf("Open = %v, want an error naming the certificate file", err)
	}
}
