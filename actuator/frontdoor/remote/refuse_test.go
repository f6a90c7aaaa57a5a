package remote_test

// A real `grayzone frontdoor` against stand-in xDS servers (actuator/xds,
// a go-control-plane server, in the test process) taking turns on serve's
// address: the legitimate one, then ones that send a state the front door
// must refuse, then forged ones (a certificate of another CA; no TLS).
// Customer traffic through the front door shows the last good state held
// throughout; its metrics, log and state file show why.

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/actuator/xds"
	"github.com/grayzone/grayzone/internal/certreload"
	"github.com/grayzone/grayzone/internal/certtest"
	"github.com/grayzone/grayzone/internal/freeport"
)

// standIn runs an xDS server on addr until stopped.
type standIn struct {
	srv  *xds.Server
	stop func()
}

func startStandIn(t *testing.T, addr string, tlsConf *tls.Config, targets []backend) *standIn {
	t.Helper()
	var ts []xds.Target
	for _, b := range targets {
		ts = append(ts, xds.Target{ID: b.id, Zone: b.zone, Addr: b.addr})
	}
	var srv *xds.Server
	var err error
	// The previous stand-in's port may take a moment to be free again.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		srv, err = xds.New(xds.Options{Listen: addr, TLS: tlsConf, Log: slog.New(slog.DiscardHandler),
			Resources: []xds.Resource{{Name: "web", Zones: []string{"za", "zb", "zc"}, Targets: ts}}})
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	s := &standIn{srv: srv, stop: func() { cancel(); <-done }}
	t.Cleanup(s.stop)
	return s
}

func (s *standIn) shift(t *testing.T, epoch uint64, zones ...string) {
	t.Helper()
	ctx := actuator.WithFence(context.Background(), epoch)
	for _, z := range zones {
		if err := s.srv.Shift(ctx, "web", z, true, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(zones) == 0 { // publish the epoch alone
		if err := s.srv.SetHealth(ctx, "web", "za-1", true); err != nil {
			t.Fatal(err)
		}
	}
}

// refused reads grayzone_frontdoor_xds_refused_total{reason} from the
// front door's /metrics.
func refused(t *testing.T, metricsURL, reason string) int {
	t.Helper()
	resp, err := http.Get(metricsURL + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	want := `grayzone_frontdoor_xds_refused_total{reason="` + reason + `"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), want); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

func TestFrontDoorRefusesForgedAndBadStates(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	ca, otherCA := certtest.NewCA(t, dir, "xds-ca"), certtest.NewCA(t, dir, "other-ca")
	fdCert, fdKey := ca.Issue(t, dir, "frontdoor")
	mutual := func(ca *certtest.CA, name string) *tls.Config {
		certFile, keyFile := ca.Issue(t, t.TempDir(), name)
		c, err := certreload.NewCert(certFile, keyFile, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := certreload.NewPool(ca.File, nil)
		if err != nil {
			t.Fatal(err)
		}
		return certreload.MutualServer(c, p)
	}
	legit, forged := mutual(ca, "grayzone-xds"), mutual(otherCA, "grayzone-xds")

	targets := startBackends(t, map[string]int{"za": 1, "zb": 1, "zc": 1})
	evil := startBackends(t, map[string]int{"za": 1})[0] // not in the front door's list
	evil.id = "za-9"
	withEvil := append([]backend{evil}, targets...)

	xdsAddr, regional, metrics := freeport.Addr(t), freeport.Addr(t), freeport.Addr(t)
	fdCfg := filepath.Join(dir, "frontdoor.yaml")
	os.WriteFile(fdCfg, []byte(fmt.Sprintf(`resource: web
xds: %s
tls: {ca_file: %s, cert_file: %s, key_file: %s, server_name: grayzone-xds}
state_file: state.json
regional: %s
zonal: {za: %s, zb: %s, zc: %s}
metrics_listen: %s
targets:
%s`, xdsAddr, ca.File, fdCert, fdKey, regional, freeport.Addr(t), freeport.Addr(t), freeport.Addr(t), metrics, targetList(targets, ""))), 0o600)

	a := startStandIn(t, xdsAddr, legit, targets)
	a.shift(t, 5, "zb")
	fd := start(t, bin, "frontdoor", "--config", fdCfg)
	waitListening(t, regional, fd)
	metricsURL := "http://" + metrics

	client := &http.Client{Timeout: 5 * time.Second}
	// route sends n requests and returns how many each instance got.
	route := func(n int) map[string]int {
		got := map[string]int{}
		for range n {
			resp, err := client.Get("http://" + regional + "/x")
			if err != nil {
				got["error"]++
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				got[fmt.Sprint(resp.StatusCode)]++
				continue
			}
			got[resp.Header.Get("X-Grayzone-Instance")]++
		}
		return got
	}
	// held checks that the front door routes with the good state: zb
	// shifted away, za and zc served, never the forged target.
	held := func(when string) {
		t.Helper()
		got := route(60)
		if got["za-1"] == 0 || got["zc-1"] == 0 || got["zb-1"] != 0 || got["za-9"] != 0 || len(got) != 2 {
			t.Fatalf("%s: the front door does not route with the last good state (zb shifted): %v\nlog:\n%s", when, got, fd.log())
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30 s\nlog:\n%s", what, fd.log())
			}
		}
	}
	waitFor("the good state (epoch 5, zb shifted) reaches the front door", func() bool {
		got := route(10)
		return got["zb-1"] == 0 && got["za-1"]+got["zc-1"] == 10
	})
	held("in sync")
	stateFile := filepath.Join(dir, "state.json")
	// The front door routes with a state before it has saved it (the
	// save is off the request path), so wait for the file rather than
	// read it at once.
	var good []byte
	waitFor("the good state (epoch 5) is saved to the state file", func() bool {
		good, _ = os.ReadFile(stateFile)
		return strings.Contains(string(good), `"Epoch": 5`)
	})

	refusal := func(what, reason string, send func()) {
		t.Helper()
		before := refused(t, metricsURL, reason)
		send()
		waitFor(what+": counted as "+reason, func() bool { return refused(t, metricsURL, reason) > before })
		held(what)
		if !strings.Contains(fd.log(), "reason="+reason) {
			t.Errorf("%s: the log does not say why (reason=%s)\n%s", what, reason, fd.log())
		}
	}
	// 1. Two zones shifted (the legitimate server, same epoch).
	refusal("two zones shifted", "several_shifts", func() { a.shift(t, 5, "zc") })
	a.stop()
	// 2. A target the front door does not know.
	b := startStandIn(t, xdsAddr, legit, withEvil)
	refusal("an unknown target", "unknown_target", func() { b.shift(t, 5, "zb") })
	b.stop()
	// 3. An older epoch (a deposed serve), otherwise sound.
	c := startStandIn(t, xdsAddr, legit, targets)
	refusal("epoch 3 after 5", "stale_epoch", func() { c.shift(t, 3) })
	c.stop()

	// 4. Forged servers: a certificate of another CA, and no TLS at all.
	// Each states something the front door would refuse anyway; what
	// matters is that it is never even read (no response sent).
	for _, f := range []struct {
		name string
		tls  *tls.Config
		want string
	}{{"a certificate of another CA", forged, "certificate signed by unknown authority"}, {"no TLS", nil, "first record does not look like a TLS handshake"}} {
		logLen := len(fd.log())
		s := startStandIn(t, xdsAddr, f.tls, withEvil)
		s.shift(t, 99, "za")
		waitFor(f.name+": refused at the handshake", func() bool { return strings.Contains(fd.log()[logLen:], f.want) })
		held(f.name)
		if s.srv.Pushes() != 0 {
			t.Errorf("%s: the front door read %d responses from a forged server", f.name, s.srv.Pushes())
		}
		s.stop()
	}
	if now, _ := os.ReadFile(stateFile); string(now) != string(good) {
		t.Fatalf("a refused state reached the state file:\n%s\nwant:\n%s", now, good)
	}
}
