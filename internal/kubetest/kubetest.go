// Package kubetest runs a real Kubernetes API server for tests: Debian's
// etcd and a kube-apiserver built from its Go module by
// .ci/kube-apiserver.sh. Nothing is faked: the tests talk to the API server
// over TLS with bearer tokens, and RBAC is enforced, so least-privilege
// roles are tested as they will run in a cluster.
//
// There are no kubelets, controllers or kube-proxy: tests create nodes, pods
// and EndpointSlices themselves and assert on the objects.
package kubetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/grayzone/grayzone/internal/freeport"
)

// Version is the kube-apiserver .ci/kube-apiserver.sh builds by default.
const Version = "v1.37.2"

// Users every cluster knows, by bearer token. Admin is in system:masters;
// the others have no permissions until a test binds them a role.
const (
	Admin    = "admin"
	Grayzone = "grayzone"
)

// Binary finds kube-apiserver: $KUBE_APISERVER, then the build cache of
// .ci/kube-apiserver.sh, then $PATH. Empty when there is none.
func Binary() string {
	if p := os.Getenv("KUBE_APISERVER"); p != "" {
		return p
	}
	cache := os.Getenv("GRAYZONE_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			if home, err := os.UserHomeDir(); err == nil {
				base = filepath.Join(home, ".cache")
			}
		}
		cache = filepath.Join(base, "grayzone")
	}
	if p := filepath.Join(cache, "kube-apiserver-"+Version, "kube-apiserver"); isExec(p) {
		return p
	}
	if p, err := exec.LookPath("kube-apiserver"); err == nil {
		return p
	}
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Cluster is a running etcd and kube-apiserver.
type Cluster struct {
	// URL is the API server's address, https://127.0.0.1:PORT.
	URL string

	dir    string
	caPEM  []byte
	cert   tls.Certificate
	tokens map[string]string // user -> token
	procs  []*exec.Cmd
}

var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Shared returns the package's cluster, starting it on first use (an API
// server takes seconds to start, so the tests of a package share one; they
// keep apart by naming their objects). It skips the test when kube-apiserver
// is not built, unless CI=true, where that is a failure. Call StopShared
// from TestMain after m.Run.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "kube-apiserver is not built: run .ci/kube-apiserver.sh (or set KUBE_APISERVER)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := exec.LookPath("etcd"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("etcd is not installed (Debian: apt-get install etcd-server)")
		}
		t.Skip("etcd is not installed (Debian: apt-get install etcd-server)")
	}
	shared.once.Do(func() { shared.c, shared.err = Start(bin) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.c
}

// StopShared stops the cluster Shared started, if any.
func StopShared() {
	if shared.c != nil {
		shared.c.Stop()
	}
}

// Start runs etcd and kube-apiserver (the binary bin) in a fresh temporary
// directory and returns once the API server is ready.
func Start(bin string) (_ *Cluster, err error) {
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, tokens: map[string]string{}}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	ports, err := freeport.Ports(3)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	if err := c.spawn("etcd", "etcd", "--name=kubetest", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL, "--logger=zap"); err != nil {
		return nil, err
	}

	if err := c.writeCerts(); err != nil {
		return nil, err
	}
	var tokens bytes.Buffer
	for _, u := range []string{Admin, Grayzone, "other"} {
		tok := randomHex(16)
		c.tokens[u] = tok
		group := ""
		if u == Admin {
			group = `,"system:masters"`
		}
		fmt.Fprintf(&tokens, "%s,%s,%s-uid%s\n", tok, u, u, group)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), tokens.Bytes(), 0o600); err != nil {
		return nil, err
	}
	c.URL = "https://127.0.0.1:" + strconv.Itoa(ports[2])
	// The flags follow controller-runtime's envtest: RBAC on, no admission
	// plugin that waits for a controller (ServiceAccount needs the token
	// controller to have made the namespace's default account).
	if err := c.spawn("kube-apiserver", bin,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[2]),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--tls-cert-file="+filepath.Join(dir, "serving.crt"), "--tls-private-key-file="+filepath.Join(dir, "serving.key"),
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+filepath.Join(dir, "sa.key"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
		"--profiling=false",
		// No kubernetes Service endpoints: the advertise address is loopback.
		"--endpoint-reconciler-type=none",
	); err != nil {
		return nil, err
	}
	return c, c.waitReady(2 * time.Minute)
}

// spawn starts a child that dies with the test binary, logging to dir/name.log.
func (c *Cluster) spawn(name, bin string, args ...string) error {
	log, err := os.Create(filepath.Join(c.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("kubetest: start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); log.Close() }()
	c.procs = append(c.procs, cmd)
	return nil
}

// waitReady polls /readyz: the API server is an external process, and its
// readiness endpoint is the only signal it gives.
func (c *Cluster) waitReady(timeout time.Duration) error {
	cl, err := rest.HTTPClientFor(c.Config(Admin))
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		for _, p := range c.procs {
			if p.ProcessState != nil {
				return fmt.Errorf("kubetest: %s exited: %s; log: %s", filepath.Base(p.Path), p.ProcessState, c.logTail(filepath.Base(p.Path)))
			}
		}
		resp, err := cl.Get(c.URL + "/readyz")
		if err == nil {
			b := make([]byte, 512)
			n, _ := resp.Body.Read(b)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b[:n])
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("kubetest: kube-apiserver not ready after %s (last: %s); log: %s", timeout, last, c.logTail("kube-apiserver"))
}

func (c *Cluster) logTail(name string) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, name+".log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Stop kills the processes and removes the directory.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
		for j := 0; j < 100 && p.ProcessState == nil; j++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	_ = os.RemoveAll(c.dir)
}

// Config is a client configuration for user (Admin, Grayzone or "other").
func (c *Cluster) Config(user string) *rest.Config {
	return &rest.Config{Host: c.URL, BearerToken: c.tokens[user], TLSClientConfig: rest.TLSClientConfig{CAData: c.caPEM},
		QPS: 100, Burst: 200}
}

// Kubeconfig writes a kubeconfig file for user into dir and returns its path,
// for tests that run grayzone as a separate process.
func (c *Cluster) Kubeconfig(dir, user string) (string, error) {
	ca := filepath.Join(dir, "kube-ca.crt")
	if err := os.WriteFile(ca, c.caPEM, 0o600); err != nil {
		return "", err
	}
	p := filepath.Join(dir, "kubeconfig-"+user)
	body := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster: {server: %q, certificate-authority: %q}
users:
- name: %s
  user: {token: %q}
contexts:
- name: kubetest
  context: {cluster: kubetest, user: %s}
current-context: kubetest
`, c.URL, ca, user, c.tokens[user], user)
	return p, os.WriteFile(p, []byte(body), 0o600)
}

// writeCerts makes the serving certificate (self-signed, for 127.0.0.1; it
// is its own CA) and the service-account signing key.
func (c *Cluster) writeCerts() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubetest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	c.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	if c.cert, err = tls.X509KeyPair(c.caPEM, keyPEM); err != nil {
		return err
	}
	sa, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	sb, err := x509.MarshalECPrivateKey(sa)
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		"serving.crt": c.caPEM, "serving.key": keyPEM,
		"sa.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sb}),
	} {
		if err := os.WriteFile(filepath.Join(c.dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Fault is how a Proxy answers.
type Fault int32

const (
	Pass  Fault = iota // forward to the API server
	Error              // answer 500 Internal Server Error
	Down               // refuse connections, as a server that is down does
)

// Proxy stands between a client and the API server, with the same serving
// certificate, and can be told to fail: an API server that answers 500 or
// is down, without touching the real one that other tests share.
type Proxy struct {
	URL     string
	c       *Cluster
	fault   atomic.Int32
	srv     *http.Server
	mu      sync.Mutex
	conns   map[net.Conn]bool
	ln      net.Listener
	tlsConf *tls.Config
	closed  bool
	// Requests counts the requests that reached the proxy.
	Requests atomic.Int64
}

// Proxy starts a failing-on-demand proxy to the API server; it stops when
// ctx ends.
func (c *Cluster) Proxy(ctx context.Context) (*Proxy, error) {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{c.cert}})
	if err != nil {
		return nil, err
	}
	target, _ := url.Parse(c.URL)
	tr, err := rest.TransportFor(&rest.Config{Host: c.URL, TLSClientConfig: rest.TLSClientConfig{CAData: c.caPEM}})
	if err != nil {
		return nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = tr
	rp.FlushInterval = -1 // watches stream
	p := &Proxy{URL: "https://" + ln.Addr().String(), c: c, conns: map[net.Conn]bool{}}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.Requests.Add(1)
		switch Fault(p.fault.Load()) {
		case Error:
			http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected","code":500}`, http.StatusInternalServerError)
			return
		case Down: // a request already read when the listener closed
			panic(http.ErrAbortHandler)
		}
		rp.ServeHTTP(w, r)
	}), ConnState: func(conn net.Conn, st http.ConnState) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch st {
		case http.StateNew:
			p.conns[conn] = true
		case http.StateClosed, http.StateHijacked:
			delete(p.conns, conn)
		}
	}}
	p.ln, p.tlsConf = ln, &tls.Config{Certificates: []tls.Certificate{c.cert}}
	go func() { _ = p.srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.srv.Close()
	}()
	return p, nil
}

// SetFault changes how the proxy answers from the next request on. Going
// from Pass to a fault also cuts open connections (watches), as a real
// outage would.
//
// Down closes the listening socket, so that connections are refused (a
// client fails at once; client-go retries a GET whose connection was reset
// or cut, but not a refused one, as with a stopped server); leaving Down
// listens again on the same address.
func (p *Proxy) SetFault(f Fault) error {
	old := Fault(p.fault.Swap(int32(f)))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if old == Pass && f != Pass {
		for conn := range p.conns {
			conn.Close()
		}
	}
	if f == Down && old != Down {
		return p.ln.Close()
	}
	if old == Down && f != Down {
		ln, err := tls.Listen("tcp", p.ln.Addr().String(), p.tlsConf)
		if err != nil {
			return fmt.Errorf("kubetest: proxy: listen again: %w", err)
		}
		p.ln = ln
		go func() { _ = p.srv.Serve(ln) }()
	}
	return nil
}

// Config is a client configuration for user that goes through the proxy.
func (p *Proxy) Config(user string) *rest.Config {
	cfg := p.c.Config(user)
	cfg.Host = p.URL
	return cfg
}
