package remote_test

// Real processes: grayzone serve (frontdoor type xds), a separate
// `grayzone frontdoor`, real HTTP backends in three zones and customer
// traffic through the front door; serve and the front door are killed with
// SIGKILL and restarted.

import (
	"bytes"
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

	"github.com/grayzone/grayzone/internal/freeport"
)

const token = "test-token-0123456789abcdef"

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "grayzone")
	out, err := exec.Command("go", "build", "-o", bin, "../../../cmd/grayzone").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
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

func TestFrontDoorOutlivesServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	zones := []string{"za", "zb", "zc"}
	var targets strings.Builder
	for _, z := range zones {
		for i := 1; i <= 2; i++ {
			z, id := z, fmt.Sprintf("%s-%d", z, i)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Grayzone-Zone", z)
				w.Header().Set("X-Grayzone-Instance", id)
				io.WriteString(w, "ok")
			}))
			t.Cleanup(srv.Close)
			fmt.Fprintf(&targets, "        - {id: %s, zone: %s, addr: %s}\n", id, z, srv.Listener.Addr())
		}
	}
	api, xdsAddr := freeport.Addr(t), freeport.Addr(t)
	serveCfg := filepath.Join(dir, "serve.yaml")
	os.WriteFile(serveCfg, []byte(fmt.Sprintf(`listen: %s
data_dir: %s
auth: {tokens: [%s]}
resources:
  - name: web
    zones: [za, zb, zc]
    frontdoor:
      type: xds
      listen: %s
      health_check: {interval: 1s}
      targets:
%s    autoshift: {enabled: false}
`, api, filepath.Join(dir, "data"), token, xdsAddr, targets.String())), 0o600)
	regional := freeport.Addr(t)
	fdCfg := filepath.Join(dir, "frontdoor.yaml")
	os.WriteFile(fdCfg, []byte(fmt.Sprintf(`resource: web
xds: %s
state_file: state.json
regional: %s
zonal: {za: %s, zb: %s, zc: %s}
`, xdsAddr, regional, freeport.Addr(t), freeport.Addr(t), freeport.Addr(t))), 0o600)

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
