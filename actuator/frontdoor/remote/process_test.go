package remote_test

// Real processes: grayzone serve (frontdoor type xds), a separate
// `grayzone frontdoor`, real HTTP backends in three zones and customer
// traffic through the front door; serve and the front door are killed with
// SIGKILL and restarted.

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/grayzone/grayzone/actuator/xds"
	"github.com/grayzone/grayzone/internal/certreload"
	"github.com/grayzone/grayzone/internal/certtest"
	"github.com/grayzone/grayzone/internal/freeport"
)

const token = "test-token-0123456789abcdef"

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// buildBinary builds grayzone once for every test of the package.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gz-remote-test-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "grayzone")
		if out, err := exec.Command("go", "build", "-o", builtBin, "../../../cmd/grayzone").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// makeCerts runs the shell block of docs/security.md's "Making the xDS
// certificates" in dir, so the documented commands are the tested ones;
// the files land in dir/certs.
func makeCerts(t *testing.T, dir string) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl: the documented certificate commands cannot run")
	}
	doc, err := os.ReadFile("../../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "## Making the xDS certificates")
	_, block, ok2 := strings.Cut(after, "```sh\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal(`docs/security.md has no sh block under "## Making the xDS certificates"`)
	}
	cmd := exec.Command("bash", "-c", block)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the documented certificate commands failed: %v\n%s", err, out)
	}
}

type proc struct {
	cmd *exec.Cmd
	out *bytes.Buffer
	mu  *sync.Mutex
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: &bytes.Buffer{}, mu: &sync.Mutex{}}
	p.cmd.Stdout = lockedBuffer{p.mu, p.out}
	p.cmd.Stderr = lockedBuffer{p.mu, p.out}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

func (p *proc) log() string { p.mu.Lock(); defer p.mu.Unlock(); return p.out.String() }

// waitListening polls until addr accepts connections (another process: no
// event to wait on), for up to 20 s.
func waitListening(t *testing.T, addr string, p *proc) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening after 20 s; log:\n%s", addr, p.log())
		}
	}
}

// backend is one of the test's HTTP targets.
type backend struct{ id, zone, addr string }

// startBackends starts n HTTP backends per zone (ids ZONE-1...), each
// answering with its zone and id in X-Grayzone-Zone / X-Grayzone-Instance.
func startBackends(t *testing.T, perZone map[string]int) []backend {
	t.Helper()
	var out []backend
	for _, z := range []string{"za", "zb", "zc"} {
		for i := 1; i <= perZone[z]; i++ {
			b := backend{id: fmt.Sprintf("%s-%d", z, i), zone: z}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Grayzone-Zone", b.zone)
				w.Header().Set("X-Grayzone-Instance", b.id)
				io.WriteString(w, "ok")
			}))
			t.Cleanup(srv.Close)
			b.addr = srv.Listener.Addr().String()
			out = append(out, b)
		}
	}
	return out
}

// targetList is the targets as YAML list items, each line indented.
func targetList(targets []backend, indent string) string {
	var b strings.Builder
	for _, t := range targets {
		fmt.Fprintf(&b, "%s  - {id: %s, zone: %s, addr: %s}\n", indent, t.id, t.zone, t.addr)
	}
	return b.String()
}

// writeServeConfig writes serve's configuration, xDS with mutual TLS
// (the certificates makeCerts made in dir/certs).
func writeServeConfig(t *testing.T, dir, api, xdsAddr string, targets []backend) string {
	t.Helper()
	cfg := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: %s
data_dir: %s
auth: {tokens: [%s]}
resources:
  - name: web
    zones: [za, zb, zc]
    frontdoor:
      type: xds
      listen: %s
      tls: {cert_file: certs/serve-xds.crt, key_file: certs/serve-xds.key, client_ca_file: certs/xds-ca.crt}
      health_check: {interval: 1s}
      targets:
%s    autoshift: {enabled: false}
`, api, filepath.Join(dir, "data"), token, xdsAddr, targetList(targets, "      "))), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestXDSReaderWithoutClientCertificateGetsNothing: serve's xDS server (a
// real process, mutual TLS as documented) answers a reader with a
// certificate of the CA, and nothing to one without a certificate, with a
// certificate of another CA, or without TLS.
func TestXDSReaderWithoutClientCertificateGetsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	makeCerts(t, dir)
	api, xdsAddr := freeport.Addr(t), freeport.Addr(t)
	serve := start(t, bin, "serve", "--config", writeServeConfig(t, dir, api, xdsAddr, startBackends(t, map[string]int{"za": 2, "zb": 2, "zc": 2})))
	waitListening(t, xdsAddr, serve)

	certs := filepath.Join(dir, "certs")
	pool, err := certreload.NewPool(filepath.Join(certs, "xds-ca.crt"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := certreload.NewCert(filepath.Join(certs, "frontdoor.crt"), filepath.Join(certs, "frontdoor.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	other := certtest.NewCA(t, dir, "other-ca")
	oc, ok := other.Issue(t, dir, "intruder")
	forged, err := certreload.NewCert(oc, ok, nil)
	if err != nil {
		t.Fatal(err)
	}
	read := func(conf *tls.Config) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n := 0
		err := xds.Watch(ctx, xdsAddr, conf, "reader", map[string][]string{resource.EndpointType: {"web", "web.za"}}, func(u xds.Update) error {
			n += len(u.Resources)
			cancel()
			return nil
		})
		return n, err
	}
	if n, err := read(certreload.MutualClient(cert, pool, "grayzone-xds")); n != 2 {
		t.Fatalf("a reader with the front door's certificate got %d resources (%v)\nserve log:\n%s", n, err, serve.log())
	}
	for name, conf := range map[string]*tls.Config{
		"no client certificate":       {RootCAs: pool.Current(), ServerName: "grayzone-xds", MinVersion: tls.VersionTLS12},
		"a certificate of another CA": certreload.MutualClient(forged, pool, "grayzone-xds"),
		"plaintext":                   nil,
	} {
		if n, err := read(conf); n != 0 || err == nil {
			t.Errorf("%s: got %d resources (%v), want nothing", name, n, err)
		}
	}
}

func TestFrontDoorOutlivesServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	makeCerts(t, dir)
	targets := startBackends(t, map[string]int{"za": 2, "zb": 2, "zc": 2})
	api, xdsAddr := freeport.Addr(t), freeport.Addr(t)
	serveCfg := writeServeConfig(t, dir, api, xdsAddr, targets)
	regional := freeport.Addr(t)
	fdCfg := filepath.Join(dir, "frontdoor.yaml")
	os.WriteFile(fdCfg, []byte(fmt.Sprintf(`resource: web
xds: %s
tls: {ca_file: certs/xds-ca.crt, cert_file: certs/frontdoor.crt, key_file: certs/frontdoor.key, server_name: grayzone-xds}
state_file: state.json
regional: %s
zonal: {za: %s, zb: %s, zc: %s}
targets:
%s`, xdsAddr, regional, freeport.Addr(t), freeport.Addr(t), freeport.Addr(t), targetList(targets, ""))), 0o600)

	serve := start(t, bin, "serve", "--config", serveCfg)
	waitListening(t, api, serve)
	fd := start(t, bin, "frontdoor", "--config", fdCfg)
	waitListening(t, regional, fd)

	client := &http.Client{Timeout: 5 * time.Second}
	zoneOf := func() (string, error) {
		resp, err := client.Get("http://" + regional + "/x")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("status %d", resp.StatusCode)
		}
		return resp.Header.Get("X-Grayzone-Zone"), nil
	}
	// until polls the front door (it follows serve asynchronously) until 30
	// requests in a row satisfy cond.
	until := func(what string, cond func(string) bool) {
		t.Helper()
		ok := 0
		for deadline := time.Now().Add(20 * time.Second); ok < 30; {
			z, err := zoneOf()
			if err == nil && cond(z) {
				ok++
			} else {
				ok = 0
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20 s (last: %q %v)\nfrontdoor log:\n%s", what, z, err, fd.log())
			}
		}
	}
	until("the front door routes to serve's targets", func(z string) bool { return z != "" })

	// Customers: continuous traffic through the front door for the whole test.
	var sent, failed atomic.Int64
	var failMsg atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			sent.Add(1)
			if _, err := zoneOf(); err != nil {
				failed.Add(1)
				failMsg.Store(err.Error())
			}
		}
	}()
	shift := func(zone string) string {
		body := fmt.Sprintf(`{"resource":"web","away_from":%q,"expires_in":"30m","comment":"test"}`, zone)
		req, _ := http.NewRequest("POST", "http://"+api+"/v1/shifts", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 201 {
			t.Fatalf("start shift: %d %s", resp.StatusCode, b)
		}
		i := strings.Index(string(b), `"id":"`)
		return strings.SplitN(string(b)[i+6:], `"`, 2)[0]
	}

	id := shift("zb")
	until("the shift reaches the front door", func(z string) bool { return z != "zb" })

	// serve dies: the front door keeps routing, with the shift in force.
	serve.cmd.Process.Kill()
	serve.cmd.Wait()
	for i := 0; i < 300; i++ {
		z, err := zoneOf()
		if err != nil || z == "zb" {
			t.Fatalf("with serve down, request %d: zone %q err %v", i, z, err)
		}
	}
	// serve comes back: the front door resynchronises (it sees the end of the shift).
	serve = start(t, bin, "serve", "--config", serveCfg)
	waitListening(t, api, serve)
	req, _ := http.NewRequest("POST", "http://"+api+"/v1/shifts/"+id+"/cancel", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("cancel: %v %v", resp, err)
	}
	resp.Body.Close()
	reached := false
	for deadline := time.Now().Add(20 * time.Second); !reached && time.Now().Before(deadline); {
		z, _ := zoneOf()
		reached = z == "zb"
	}
	if !reached {
		t.Fatalf("after serve's restart and the shift's end, zb gets no traffic\nfrontdoor log:\n%s", fd.log())
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d customer requests failed while serve was killed and restarted (last: %v)", failed.Load(), sent.Load(), failMsg.Load())
	}

	// The front door alone restarts, serve down: it comes back with the last state.
	shift("za")
	until("the second shift reaches the front door", func(z string) bool { return z != "za" })
	serve.cmd.Process.Kill()
	serve.cmd.Wait()
	fd.cmd.Process.Kill()
	fd.cmd.Wait()
	fd = start(t, bin, "frontdoor", "--config", fdCfg)
	waitListening(t, regional, fd)
	for i := 0; i < 100; i++ {
		z, err := zoneOf()
		if err != nil || z == "za" || z == "" {
			t.Fatalf("restarted front door, serve down, request %d: zone %q err %v\nlog:\n%s", i, z, err, fd.log())
		}
	}
	if !strings.Contains(fd.log(), "routing with the last state received") {
		t.Fatalf("the restarted front door should say it routes with its saved state:\n%s", fd.log())
	}
	t.Logf("%d customer requests through serve's kill -9 and restart, none failed", sent.Load())
}
