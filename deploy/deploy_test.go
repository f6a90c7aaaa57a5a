// Package deploy holds what installs grayzone (container image, Helm chart,
// systemd unit, Grafana dashboard); its tests check them against the code.
package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/service"
	"github.com/grayzone/grayzone/telemetry/observation"
)

// dashboardMetrics returns the metric names the dashboard's PromQL queries.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("grafana/grayzone.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Definition string
			}
		}
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("grafana/grayzone.json: %v", err)
	}
	var exprs []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	// Identifiers followed by { or ( are metrics or functions; grayzone's
	// metrics all start with grayzone_ and nothing else in PromQL does.
	re := regexp.MustCompile(`\bgrayzone_[a-z0-9_]+`)
	var out []string
	for _, e := range exprs {
		for _, m := range re.FindAllString(e, -1) {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	slices.Sort(out)
	if len(out) < 8 {
		t.Fatalf("the dashboard queries only %v", out)
	}
	return out
}

const serveYAML = `listen: 127.0.0.1:0
auth: {open_reads: true}
resources:
  - name: web
    zones: [az1, az2]
    frontdoor:
      type: embedded
      regional: 127.0.0.1:0
      zonal: {az1: 127.0.0.1:0, az2: 127.0.0.1:0}
      targets:
        - {id: a1, zone: az1, addr: 127.0.0.1:9}
        - {id: a2, zone: az1, addr: 127.0.0.1:19}
        - {id: b1, zone: az2, addr: 127.0.0.1:29}
        - {id: b2, zone: az2, addr: 127.0.0.1:39}
    autoshift: {enabled: false}
`

// Every metric the dashboard queries is one a real grayzone serve exports
// on /metrics (scraped, with data flowing and a shift active, so that the
// metrics that appear only then are there too).
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	want := dashboardMetrics(t)
	cfg, err := config.Parse("serve.yaml", []byte(serveYAML))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, err := service.Open(ctx, service.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	addr := svc.APIAddr()
	ingest := func() {
		t.Helper()
		now := time.Now()
		var obs []observation.Observation
		for _, z := range []string{"az1", "az2"} {
			obs = append(obs, observation.Observation{At: now, Source: observation.Server, Zone: z, Instance: z + "-i", Operation: "home",
				Outcome: observation.Success, Latency: 5 * time.Millisecond})
		}
		// az1 failing: an alarm in ALARM, the only state
		// grayzone_alarm_in_alarm has a series for.
		for range 5 {
			obs = append(obs, observation.Observation{At: now, Source: observation.Server, Zone: "az1", Instance: "az1-i", Operation: "home",
				Outcome: observation.Fault, Latency: 5 * time.Millisecond})
		}
		if err := svc.Ingest(ctx, "web", obs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.StartShift(ctx, shift.StartRequest{Resource: "web", AwayFrom: "az1", ExpiresIn: time.Hour, Comment: "dashboard test", StartedBy: "test"}); err != nil {
		t.Fatal(err)
	}
	// The service assesses on its own 250 ms tick: scrape until every
	// queried metric is there, or give up.
	var missing []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		ingest() // latency is exported only with recent data
		have := scrape(t, "http://"+addr+"/metrics")
		missing = missing[:0]
		for _, m := range want {
			if !have[m] {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Errorf("the dashboard queries metrics /metrics does not export: %v", missing)
	}
	cancel()
	<-done
}

// scrape returns the metric names in a Prometheus text exposition.
func scrape(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		name := l[:strings.IndexAny(l, "{ ")]
		out[name] = true
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return out
}
