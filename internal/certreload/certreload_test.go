package certreload_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/grayzone/grayzone/internal/certreload"
	"github.com/grayzone/grayzone/internal/certtest"
)

// TestPoolReloads: a CA bundle replaced on disk is in service after the
// next check; a broken one keeps the last good bundle and reports why.
func TestPoolReloads(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ca.crt")
	first := certtest.NewCA(t, dir, "first")
	second := certtest.NewCA(t, dir, "second")
	copyFile := func(from string, mod time.Time) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(file, mod, mod)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	copyFile(first.File, now.Add(-time.Hour))
	p, err := certreload.NewPool(file, clock)
	if err != nil {
		t.Fatal(err)
	}
	was := p.Current()
	copyFile(second.File, now)
	if p.Current() != was {
		t.Fatal("reloaded before CheckEvery passed")
	}
	now = now.Add(certreload.CheckEvery)
	renewed := p.Current()
	if renewed == was || p.Err() != nil {
		t.Fatalf("the renewed bundle is not in service (err %v)", p.Err())
	}
	os.WriteFile(file, []byte("not PEM"), 0o644)
	os.Chtimes(file, now.Add(time.Minute), now.Add(time.Minute))
	now = now.Add(certreload.CheckEvery)
	if p.Current() != renewed || p.Err() == nil {
		t.Fatalf("a broken bundle replaced the good one, or its error is not reported (%v)", p.Err())
	}
	if _, err := certreload.NewPool(filepath.Join(dir, "missing.crt"), nil); err == nil {
		t.Fatal("a missing CA file is not an error")
	}
}
