package lab

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/lab/console"
	"github.com/grayzone/grayzone/lab/scenario"
)

// The real-mode tests run real servers, links, a database, load and canaries
// in wall-clock time. They are the CI's end-to-end proof; -short skips them.

func TestRealSmokeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("real mode runs for 100 s")
	}
	t.Parallel()
	sc := loadPublic(t, "smoke")
	var progress bytes.Buffer
	r, err := Run(context.Background(), Options{Scenario: sc, Mode: ModeReal,
		Progress: console.New(&syncWriter{w: &progress}, console.Options{Mode: console.Plain})})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Expect.Met {
		t.Errorf("expect not met: %v\nprogress:\n%s", r.Expect.Failures, progress.String())
	}
	if r.Mode != "real" || r.Duration != 100 {
		t.Errorf("mode %q duration %v", r.Mode, r.Duration)
	}
	// 30 req/s for 100 s, paced: the count is exact up to requests cut at the end.
	if r.Requests.Total < 2900 || r.Requests.Total > 3000 {
		t.Errorf("customer requests = %d, want about 3000", r.Requests.Total)
	}
	if len(r.Detections) == 0 || r.Detections[0].Zone != "az-a" || r.Detections[0].At > 35 {
		t.Errorf("detections = %+v, want az-a within 15 s of the fault at 20 s", r.Detections)
	}
	if len(r.ControlPlane) != 1 || r.ControlPlane[0].Restored == nil {
		t.Errorf("control plane = %+v, want az-a excluded then restored", r.ControlPlane)
	}
	// The blackhole fails ride and pay in az-a until the shift: some customers
	// fail, but far fewer than the third of requests az-a would fail unshifted.
	if r.Requests.Failed == 0 || r.Requests.Ratio() > 0.03 {
		t.Errorf("failed %d of %d", r.Requests.Failed, r.Requests.Total)
	}
	out := progress.String()
	for _, want := range []string{"database: ", "ISOLATED", "shifted    traffic away from az-a", "excluded   az-a", " failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress lacks %q:\n%s", want, out)
		}
	}
}

// A short scenario on the embedded store: the path a machine with Go alone takes.
func TestRealEmbeddedStore(t *testing.T) {
	if testing.Short() {
		t.Skip("real mode runs for 55 s")
	}
	t.Parallel()
	sc := parseInline(t, `version: 1
name: embedded-short
duration: 55s
topology: {zones: [az-a, az-b, az-c], instances_per_zone: 2}
load: {rps: 30}
canary: {interval: 2s}
policy: {control_plane_after: 5s, recovery_hold: 5s}
faults:
  - {at: 8s, duration: 15s, kind: reset, zone: az-b, percent: 100}
expect:
  shift: {away_from: az-b, within: 15s}
  recovered_within: 25s
`)
	r, err := Run(context.Background(), Options{Scenario: sc, Mode: ModeReal, Database: "embedded", Baseline: true})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Expect.Met {
		t.Errorf("expect not met: %v", r.Expect.Failures)
	}
	if !strings.Contains(r.Database, "embedded") {
		t.Errorf("database = %q", r.Database)
	}
	if r.Baseline == nil || r.Baseline.Requests.Failed < 2*r.Requests.Failed || r.Baseline.Requests.Failed < 50 {
		t.Errorf("baseline %+v vs mitigated %+v: want the unmitigated run clearly worse", r.Baseline, r.Requests)
	}
}

// Ctrl-C: the run stops, the partial report comes back, and nothing the lab
// started is left behind.
func TestRealInterruptCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("real mode")
	}
	// Not parallel: it checks that no throwaway database directory outlives
	// the run, and the parallel real-mode tests make their own. Its own
	// TMPDIR keeps other packages' throwaway clusters, which go test may be
	// running at the same time, out of the count. (World-readable: initdb
	// runs as the postgres user.)
	tmp, err := os.MkdirTemp("", "gz-interrupt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	before := pgTempDirs(t)
	sc := loadPublic(t, "smoke")
	ctx, cancel := context.WithCancel(context.Background())
	progress := &syncWriter{w: &bytes.Buffer{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Interrupt once the workload has answered a few customers (the
		// first status line, at 10 s).
		for i := 0; i < 300; i++ {
			if strings.Contains(progress.String(), " failed") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
	}()
	r, err := Run(ctx, Options{Scenario: sc, Mode: ModeReal, Progress: console.New(progress, console.Options{Mode: console.Plain})})
	<-done
	if err == nil {
		t.Fatal("interrupted run returned no error")
	}
	if r == nil || !r.Interrupted || r.Duration >= 100 || r.Requests.Total == 0 {
		t.Fatalf("partial report = %+v", r)
	}
	for d := range pgTempDirs(t) {
		if !before[d] {
			t.Errorf("throwaway database directory left behind: %s", d)
		}
	}
	// The listeners are closed: nothing answers on the ports the run used.
	for _, line := range strings.Split(progress.String(), "\n") {
		if i := strings.Index(line, "127.0.0.1:"); i >= 0 && strings.HasPrefix(line, "database: throwaway") {
			addr := strings.Fields(line[i:])[0]
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Errorf("database still listening on %s", addr)
			}
		}
	}
}

func pgTempDirs(t *testing.T) map[string]bool {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(os.TempDir(), "grayzone-pg-*"))
	out := map[string]bool{}
	for _, d := range m {
		out[d] = true
	}
	return out
}

func loadPublic(t *testing.T, name string) *scenario.Scenario {
	t.Helper()
	for _, sc := range publicScenarios(t) {
		if sc.Name == name {
			return sc
		}
	}
	t.Fatalf("no public scenario %s", name)
	return nil
}

func parseInline(t *testing.T, y string) *scenario.Scenario {
	t.Helper()
	sc, err := scenario.Parse("inline.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}
