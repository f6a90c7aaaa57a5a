package xds

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/internal/certreload"
	"github.com/grayzone/grayzone/internal/certtest"
)

func startServer(t *testing.T, o Options) *Server {
	t.Helper()
	o.Listen = "127.0.0.1:0"
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.Resources = []Resource{{Name: "web", Zones: []string{"za", "zb"},
		Targets: []Target{{ID: "a1", Zone: "za", Addr: "127.0.0.1:1"}, {ID: "b1", Zone: "zb", Addr: "127.0.0.1:2"}}}}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, s)
	return s
}

// firstUpdate watches the server and returns its first update, or the
// error that ended the stream (within 10 s).
func firstUpdate(t *testing.T, addr string, tlsConf *tls.Config) (Update, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan Update, 1)
	err := Watch(ctx, addr, tlsConf, "t", map[string][]string{resource.EndpointType: {"web"}}, func(u Update) error {
		select {
		case got <- u:
		default:
		}
		cancel()
		return nil
	})
	select {
	case u := <-got:
		return u, nil
	default:
		return Update{}, err
	}
}

func mustCert(certFile, keyFile string) *certreload.Cert {
	c, err := certreload.NewCert(certFile, keyFile, nil)
	if err != nil {
		panic(err)
	}
	return c
}

func mustPool(t *testing.T, file string) *certreload.Pool {
	t.Helper()
	p, err := certreload.NewPool(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMutualTLS: with mutual TLS, a reader with a client certificate of the
// client CA gets the state; one without a certificate, with a certificate of
// another CA, or without TLS gets nothing.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, other := certtest.NewCA(t, dir, "xds-ca"), certtest.NewCA(t, dir, "other-ca")
	srvCert := mustCert(ca.Issue(t, dir, "serve"))
	s := startServer(t, Options{TLS: certreload.MutualServer(srvCert, mustPool(t, ca.File))})

	good := certreload.MutualClient(mustCert(ca.Issue(t, dir, "frontdoor")), mustPool(t, ca.File), "")
	if u, err := firstUpdate(t, s.Addr(), good); err != nil || len(u.Resources) != 1 {
		t.Fatalf("a client of the CA: %+v, %v", u, err)
	}
	noCert := &tls.Config{RootCAs: mustPool(t, ca.File).Current(), MinVersion: tls.VersionTLS12}
	forged := certreload.MutualClient(mustCert(other.Issue(t, dir, "intruder")), mustPool(t, ca.File), "")
	for name, conf := range map[string]*tls.Config{"no client certificate": noCert, "a certificate of another CA": forged, "plaintext": nil} {
		if u, err := firstUpdate(t, s.Addr(), conf); err == nil || len(u.Resources) != 0 {
			t.Errorf("%s: got %+v, %v; want nothing", name, u, err)
		}
	}
	if s.Pushes() != 1 {
		t.Errorf("%d responses sent, want 1 (to the client of the CA only)", s.Pushes())
	}
}

// TestEpochInVersion: the version carries the epoch of the last order; an
// order of an older epoch is refused; a new epoch alone is published.
func TestEpochInVersion(t *testing.T) {
	s := startServer(t, Options{})
	ctx := context.Background()
	if u, err := firstUpdate(t, s.Addr(), nil); err != nil || !strings.HasPrefix(u.Version, "0.") {
		t.Fatalf("before any fenced order: version %q, %v", u.Version, err)
	}
	if err := s.Shift(actuator.WithFence(ctx, 5), "web", "zb", true, time.Time{}); err != nil {
		t.Fatal(err)
	}
	u, err := firstUpdate(t, s.Addr(), nil)
	if e, ok := EpochOf(u.Version); err != nil || !ok || e != 5 {
		t.Fatalf("after an order of epoch 5: version %q (%d, %v), %v", u.Version, e, ok, err)
	}
	if err := s.Shift(actuator.WithFence(ctx, 4), "web", "zb", false, time.Time{}); !errors.Is(err, ErrStaleFence) {
		t.Fatalf("an order of epoch 4 after 5: %v, want ErrStaleFence", err)
	}
	if err := s.SetHealth(actuator.WithFence(ctx, 6), "web", "a1", true); err != nil { // no change but the epoch
		t.Fatal(err)
	}
	if u, _ := firstUpdate(t, s.Addr(), nil); !strings.HasPrefix(u.Version, "6.") {
		t.Fatalf("a new epoch is published at once: version %q", u.Version)
	}
	if _, ok := EpochOf("not-ours"); ok {
		t.Error("EpochOf accepted a foreign version")
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) Len() int { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Len() }

// TestNACKLogIsBounded: twenty NACKs of a megabyte each are counted, and
// the log takes a few lines of a few hundred bytes.
func TestNACKLogIsBounded(t *testing.T) {
	var log lockedBuf
	s := startServer(t, Options{Log: slog.New(slog.NewTextHandler(&log, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	huge := strings.Repeat("x", 1<<20)
	go Watch(ctx, s.Addr(), nil, "noisy-proxy", map[string][]string{resource.EndpointType: {"web"}},
		func(Update) error { return errors.New(huge) })
	for i := 0; s.NACKs() < 20; i++ {
		if i > 2000 {
			t.Fatalf("%d NACKs after %d changes", s.NACKs(), i)
		}
		if err := s.SetHealth(ctx, "web", "a1", i%2 == 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := log.Len(); n > 16<<10 {
		t.Fatalf("%d NACKs of 1 MiB wrote %d bytes of log", s.NACKs(), n)
	}
	t.Logf("%d NACKs of 1 MiB, %d bytes of log", s.NACKs(), log.Len())
}
