package cli

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/grayzone/grayzone/benchmark"
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
	res, err := benchmark.RunFleet(context.Background(), benchmark.FleetOptions{Resources: 3, Duration: 4 * time.Second, Rate: 2})
	if err != nil {
		t.Fatal(err)
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
