package cli

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/benchmark"
	"github.com/grayzone/grayzone/internal/fdlimit"
)

// TestMain lets this test binary be grayzone itself for the processes
// bench fleet starts (workload, serve): with GRAYZONE_TEST_MAIN=1 it runs
// Main on its arguments instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("GRAYZONE_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// A small fleet runs end to end and the counts add up: every request sent
// is counted, none fails on a healthy workload, and serve's descriptors,
// series and status samples are there.
func TestBenchFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts serve and the workload as processes")
	}
	t.Setenv("GRAYZONE_TEST_MAIN", "1")
	prof, heap := filepath.Join(t.TempDir(), "serve.prof"), filepath.Join(t.TempDir(), "heap.prof")
	res, err := benchmark.RunFleet(context.Background(), benchmark.FleetOptions{Resources: 3, Duration: 4 * time.Second, Rate: 2, TickWorkers: 2, CPUProfile: prof,
		MemProfile: heap, HarnessNice: 5, GCPercent: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{prof, heap} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("serve's profile %s: %v (want it written when serve stops)", p, err)
		}
	}
	// serve's GC, read from its /metrics, with the --gc-percent it was given.
	if g := res.GC; g.GOGC != 200 || g.LiveMiB <= 0 || g.CPUPercent < 0 || g.AllocMBps <= 0 || g.Goroutines <= 0 || res.HarnessNice != 5 {
		t.Errorf("GC %+v, harness nice %d; want GOGC 200, a live heap, GC CPU, an allocation rate, goroutines and nice 5", g, res.HarnessNice)
	}
	t.Logf("%+v", res)
	// 3 resources × 2 req/s × 4 s, give or take a request per sender at the edges.
	if res.Requests < 18 || res.Requests > 30 {
		t.Errorf("requests %d, want about 24", res.Requests)
	}
	if res.Failed != 0 {
		t.Errorf("%d failed requests", res.Failed)
	}
	if res.Resources != 3 || res.FDs < 3*4 || res.Series == 0 || res.MetricsKB <= 0 || res.StatusCalls < 2 || res.StatusP50ms <= 0 || res.StatusMaxms < res.StatusP50ms || res.RSSMiB <= 0 {
		t.Errorf("%+v", res)
	}
	if res.FailStatic != 0 {
		t.Errorf("%d fail-static entries on a healthy fleet", res.FailStatic)
	}
}

// serve's start warns with the number of resources the open-file limit
// allows when it is too low for the configuration, and says when it raised it.
func TestReportFileLimit(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	// 1024 descriptors allow (1024-128)/24 = 37 resources.
	reportFileLimit(log, fdlimit.Limit{Was: 1024, Soft: 1024, Hard: 1024}, nil, 10)
	if out := buf.String(); out != "" {
		t.Errorf("10 resources: %s", out)
	}
	buf.Reset()
	reportFileLimit(log, fdlimit.Limit{Was: 1024, Soft: 1024, Hard: 1024}, nil, 500)
	if out := buf.String(); !strings.Contains(out, "WARN") || !strings.Contains(out, "allows_resources=37 resources=500") {
		t.Errorf("500 resources: %q, want a warning that 37 are allowed", out)
	}
	buf.Reset()
	reportFileLimit(log, fdlimit.Limit{Was: 1024, Soft: 524288, Hard: 524288, Raised: true}, nil, 500)
	if out := buf.String(); strings.Contains(out, "WARN") || !strings.Contains(out, "raised the open-file limit") {
		t.Errorf("raised: %q", out)
	}
}
