// Package amtest runs a real Alertmanager (Debian's prometheus-alertmanager)
// for tests, routing every alert to a webhook receiver inside the test that
// records what arrives, grouping and resolution included.
package amtest

import (
	"context"
	"encoding/json"
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
	"testing"
	"time"
)

// Binary is where Debian installs Alertmanager; $ALERTMANAGER overrides it.
func Binary() string {
	if b := os.Getenv("ALERTMANAGER"); b != "" {
		return b
	}
	if b, err := exec.LookPath("prometheus-alertmanager"); err == nil {
		return b
	}
	if b, err := exec.LookPath("alertmanager"); err == nil {
		return b
	}
	return "/usr/bin/prometheus-alertmanager"
}

// Alert is one alert of a webhook notification.
type Alert struct {
	Status       string            `json:"status"` // firing, resolved
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Notification is what Alertmanager's webhook receiver posts for a group.
type Notification struct {
	Status      string            `json:"status"`
	GroupKey    string            `json:"groupKey"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []Alert           `json:"alerts"`
	Received    time.Time         `json:"-"`
}

// Options shape the route.
type Options struct {
	GroupBy       []string      // default alertname, resource
	GroupWait     time.Duration // default 100ms
	GroupInterval time.Duration // default 200ms
}

// Alertmanager is a running Alertmanager and its receiver's record.
type Alertmanager struct {
	URL string // the Alertmanager's base URL

	mu   sync.Mutex
	got  []Notification
	wake chan struct{}
}

// Start runs Alertmanager on a free 127.0.0.1 port until the test ends; it
// skips the test when the binary is missing.
func Start(t testing.TB, o Options) *Alertmanager {
	t.Helper()
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("alertmanager not installed (%s): apt-get install prometheus-alertmanager", bin)
	}
	if o.GroupBy == nil {
		o.GroupBy = []string{"alertname", "resource"}
	}
	if o.GroupWait == 0 {
		o.GroupWait = 100 * time.Millisecond
	}
	if o.GroupInterval == 0 {
		o.GroupInterval = 200 * time.Millisecond
	}
	a := &Alertmanager{wake: make(chan struct{}, 1)}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n Notification
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &n); err != nil {
			t.Errorf("amtest: bad notification %q: %v", body, err)
		}
		n.Received = time.Now()
		a.mu.Lock()
		a.got = append(a.got, n)
		a.mu.Unlock()
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(recv.Close)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`route:
  receiver: test
  group_by: [%s]
  group_wait: %s
  group_interval: %s
  repeat_interval: 24h
receivers:
  - name: test
    webhook_configs:
      - url: %s
        send_resolved: true
`, strings.Join(o.GroupBy, ", "), ms(o.GroupWait), ms(o.GroupInterval), recv.URL)
	cfgFile := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	a.URL = "http://127.0.0.1:" + port
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+port, "--cluster.listen-address=", "--log.level=warn")
	logf, err := os.Create(filepath.Join(dir, "alertmanager.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("amtest: start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("alertmanager log:\n%s", b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(a.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("amtest: alertmanager not ready at %s: %v", a.URL, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return a
}

func ms(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }

// FreePort returns a port on 127.0.0.1 the OS had free a moment ago (for a
// process that must be told its port).
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// Notifications returns what the receiver got so far, in arrival order.
func (a *Alertmanager) Notifications() []Notification {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Notification(nil), a.got...)
}

// WaitFor waits until cond holds of the notifications so far, or fails the
// test after timeout.
func (a *Alertmanager) WaitFor(t testing.TB, timeout time.Duration, what string, cond func([]Notification) bool) []Notification {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		got := a.Notifications()
		if cond(got) {
			return got
		}
		select {
		case <-a.wake:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("amtest: %s: not within %s; got %+v", what, timeout, got)
		}
	}
}

// Find returns the last state of each alert named alertname across the
// notifications, keyed by fingerprint.
func Find(ns []Notification, alertname string) map[string]Alert {
	out := map[string]Alert{}
	for _, n := range ns {
		for _, al := range n.Alerts {
			if al.Labels["alertname"] == alertname {
				out[al.Fingerprint] = al
			}
		}
	}
	return out
}

// Any reports whether an alert named alertname, in its last state, satisfies ok.
func Any(ns []Notification, alertname string, ok func(Alert) bool) bool {
	for _, a := range Find(ns, alertname) {
		if ok(a) {
			return true
		}
	}
	return false
}

// Resolved is an Any condition: the alert is resolved.
func Resolved(a Alert) bool { return a.Status == "resolved" }
