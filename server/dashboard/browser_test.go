package dashboard_test

// Browser tests: the dashboard and the lab report in a real headless
// Chromium (Debian's /usr/bin/chromium, driven with chromedp), against a
// grayzone serve running in process with real front doors and canaries.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/grayzone/grayzone/cli"
	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/internal/freeport"
	"github.com/grayzone/grayzone/lab"
	labreport "github.com/grayzone/grayzone/lab/report"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/dashboard"
	"github.com/grayzone/grayzone/server/service"
	"github.com/grayzone/grayzone/telemetry/batch"
)

const (
	chromiumPath = "/usr/bin/chromium"
	testToken    = "browser-test-token-0123456789"
)

// browser starts a fresh headless Chromium and returns a tab's context. The
// page's console errors and uncaught exceptions fail the test at cleanup,
// except those allow says were provoked on purpose.
func browser(t *testing.T, allow func(string) bool) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("browser test skipped: no Chromium at %s (apt-get install -y chromium; CI installs it)", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	var mu sync.Mutex
	var problems []string
	note := func(s string) {
		if allow != nil && allow(s) {
			return
		}
		mu.Lock()
		problems = append(problems, s)
		mu.Unlock()
	}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				note("console." + string(ev.Type) + ": " + strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			note(fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber, msg))
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				note(fmt.Sprintf("console error (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
	if err == nil {
		_, err = chromedp.Call(ctx, cdplog.Enable, cdp.Empty{})
	}
	if err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("start Chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("page console: %s", p)
		}
	})
	return ctx
}

// artifacts is where screenshots go: $GRAYZONE_ARTIFACTS, else a temp dir.
func artifacts(t *testing.T) string {
	if d := os.Getenv("GRAYZONE_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(artifacts(t), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// waitJS polls a JavaScript expression until it is true.
func waitJS(t *testing.T, ctx context.Context, d time.Duration, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr)); err == nil && ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 2000)`))
	t.Fatalf("timed out after %s waiting for %s (%s); the page says:\n%s", d, what, expr, page)
}

func evalInt(t *testing.T, ctx context.Context, expr string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return n
}

// backend is an app instance: /health always passes (a gray failure hides
// from health checks); in a failing zone a third of other requests get 503.
func backend(t *testing.T, failing *atomic.Bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" && failing != nil && failing.Load() && n.Add(1)%3 == 0 {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// startService runs grayzone serve in process over zones z1..z3 (z1's
// instances failing when failing is set) with canaries every second and
// autoshift off, so the operator shifts from the page.
func startService(t *testing.T, failing *atomic.Bool) (addr string) {
	t.Helper()
	return startServiceWith(t, failing, "enabled: false")
}

// startServiceWith is startService with the resource's autoshift settings.
func startServiceWith(t *testing.T, failing *atomic.Bool, autoshift string) (addr string) {
	t.Helper()
	zones := []string{"z1", "z2", "z3"}
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\ndata_dir: %s\nauth: {tokens: [%s], open_reads: true}\nresources:\n  - name: web\n    zones: [z1, z2, z3]\n", t.TempDir(), testToken)
	zonal := map[string]string{}
	for _, z := range zones {
		zonal[z] = freeport.Addr(t)
	}
	fmt.Fprintf(&b, "    frontdoor:\n      type: embedded\n      regional: %s\n      zonal: {z1: %s, z2: %s, z3: %s}\n", freeport.Addr(t), zonal["z1"], zonal["z2"], zonal["z3"])
	b.WriteString("      health_check: {interval: 1s, timeout: 500ms}\n      targets:\n")
	for _, z := range zones {
		var f *atomic.Bool
		if z == "z1" {
			f = failing
		}
		for i := 1; i <= 2; i++ {
			fmt.Fprintf(&b, "        - {id: %s-%d, zone: %s, addr: %s}\n", z, i, z, backend(t, f))
		}
	}
	b.WriteString("    canaries:\n")
	for _, z := range zones {
		fmt.Fprintf(&b, "      - {zone: %s, url: http://%s, interval: 1s}\n", z, zonal[z])
	}
	fmt.Fprintf(&b, "    autoshift: {%s}\n", autoshift)
	path := filepath.Join(t.TempDir(), "serve.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := cfg.LoadTokens()
	if err != nil {
		t.Fatal(err)
	}
	tw := &testWriter{t: t}
	log := slog.New(slog.NewTextHandler(tw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := service.Open(ctx, service.Options{Config: cfg, Tokens: tokens, Log: log,
		Extra: func(b api.Backend) map[string]http.Handler {
			return dashboard.Handlers(b, dashboard.Options{OpenReads: cfg.Auth.OpenReads, Tokens: func() []config.Token { return tokens }, Log: log})
		}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service: %v", err)
		}
		svc.Close()
		tw.stop()
	})
	return svc.APIAddr()
}

// testWriter sends the service's log to the test's, until stopped (a log
// line after the test ends would panic).
type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// feed reports server-side outcomes as the app's instances would: z2 and
// z3 serve fast; z1 too until failing, then it fails 40% of requests slowly;
// once shifted, customers no longer reach z1, so it reports nothing.
func feed(ctx context.Context, c *api.Client, failing, shifted *atomic.Bool) {
	rng := rand.New(rand.NewPCG(1, 2))
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		var obs []batch.ObservationIn
		for _, z := range []string{"z1", "z2", "z3"} {
			if z == "z1" && shifted.Load() {
				continue
			}
			for i := range 30 {
				o := batch.ObservationIn{Source: "server", Zone: z, Instance: fmt.Sprintf("%s-%d", z, i%2+1), Operation: "ride",
					Outcome: "success", LatencyMs: 4 + 8*rng.Float64()}
				if z == "z1" && failing.Load() {
					o.LatencyMs = 40 + 90*rng.Float64()
					if rng.Float64() < 0.4 {
						o.Outcome, o.LatencyMs = "fault", 900+900*rng.Float64()
					}
				}
				obs = append(obs, o)
			}
		}
		_, _ = c.Ingest(ctx, batch.ObservationBatch{Resource: "web", Observations: obs})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs grayzone serve and a browser for about 25 s")
	}
	var failing, shifted atomic.Bool
	var provoking atomic.Bool // the deliberate unauthenticated POST logs a 401
	ctx := browser(t, func(msg string) bool {
		return provoking.Load() && strings.Contains(msg, "401") && strings.Contains(msg, "/v1/shifts")
	})
	addr := startService(t, &failing)
	base := "http://" + addr
	client := api.NewClient(base, testToken)
	fctx, stopFeed := context.WithCancel(context.Background())
	defer stopFeed()
	go feed(fctx, client, &failing, &shifted)
	started := time.Now()

	// Deadlines are generous: they only bound a failure, and a loaded
	// machine (CI runs other packages' tests beside this one) can keep the
	// browser from the CPU for seconds.
	tctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(1440, 1000), chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, tctx, 20*time.Second, "three zone cards", `document.querySelectorAll('#zones article.zone').length === 3`)
	// The tick loop's line (whether it warns depends on the machine's load).
	waitJS(t, tctx, 20*time.Second, "the engine's line", `document.getElementById('engine').textContent.startsWith('engine: tick p99 ')`)

	// Without a token the page is read-only, and the API refuses a forced request.
	disabled, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`document.getElementById('f-submit').disabled && document.getElementById('f-zone').disabled`))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`#auth`)))
	if err != nil {
		t.Fatal(err)
	}
	if !disabled || !strings.Contains(auth, "Read-only") {
		t.Fatalf("without a token: submit disabled = %v, auth box %q; want disabled and explained", disabled, auth)
	}
	provoking.Store(true)
	code, err := chromedp.Run(tctx, chromedp.Evaluate[int](`fetch('v1/shifts', {method: 'POST', headers: {'Content-Type': 'application/json'},
		body: JSON.stringify({resource: 'web', away_from: 'z2', expires_in: '1h', comment: 'forced'})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the console report it while it is allowed
	provoking.Store(false)
	if code != http.StatusUnauthorized {
		t.Fatalf("POST /v1/shifts without a token from the page: %d, want 401", code)
	}
	if ss, err := client.Shifts(context.Background(), shift.ListFilter{}); err != nil || len(ss) != 0 {
		t.Fatalf("shifts after the refused request: %v %v, want none", ss, err)
	}

	// The charts draw real points, and more as time passes.
	const points = `(window.grayzone.charts() ? window.grayzone.charts().avail.u.data[0].length : 0)`
	waitJS(t, tctx, 20*time.Second, "chart points", points+` > 0`)
	first := evalInt(t, tctx, points)
	waitJS(t, tctx, 20*time.Second, "the chart to grow", fmt.Sprintf(`%s > %d`, points, first))

	// A few healthy seconds on the charts, then z1 starts failing (its
	// instances too, so its canaries see it), and the detector finds it.
	time.Sleep(time.Until(started.Add(8 * time.Second)))
	failing.Store(true)
	waitJS(t, tctx, 30*time.Second, "z1 ISOLATED", `document.querySelector('[data-zone="z1"] .verdict').textContent === 'ISOLATED'`)

	time.Sleep(3 * time.Second) // the impact, before anyone acts
	for i, z := range []string{"z1", "z2", "z3"} {
		for _, chart := range []string{"avail", "lat"} {
			if n := evalInt(t, tctx, fmt.Sprintf(`window.grayzone.charts().%s.u.data[%d].filter(v => v != null).length`, chart, 1+2*i)); n == 0 {
				t.Errorf("%s chart: no server-side values of %s drawn", chart, z)
			}
		}
	}

	// Give a token and shift z1 away from the page.
	if err := chromedp.Do(tctx,
		chromedp.SendKeys(chromedp.CSS(`#token`), testToken),
		chromedp.Click(chromedp.CSS(`#token-save`)),
		chromedp.WaitEnabled(chromedp.CSS(`#f-submit`)),
		chromedp.SetValue(chromedp.CSS(`#f-zone`), "z1"),
		chromedp.SetValue(chromedp.CSS(`#f-duration`), "1h"),
		chromedp.SendKeys(chromedp.CSS(`#f-comment`), "z1 fails 40% of rides; shifting while we look"),
		chromedp.Click(chromedp.CSS(`#f-submit`)),
	); err != nil {
		t.Fatal(err)
	}
	var sh shift.Shift
	deadline := time.Now().Add(20 * time.Second)
	for sh.ID == "" && time.Now().Before(deadline) {
		ss, _ := client.Shifts(context.Background(), shift.ListFilter{Status: shift.Active})
		for _, s := range ss {
			if s.AwayFrom == "z1" && s.Origin == shift.Manual && strings.Contains(s.Comment, "shifting while we look") {
				sh = s
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if sh.ID == "" {
		t.Fatal("the shift started from the page is not in the API's shift list")
	}
	shifted.Store(true)
	// The CLI sees it too.
	var out, errb bytes.Buffer
	if code := cli.Main([]string{"shift", "list", "--output", "json", "--server", base}, &out, &errb); code != 0 {
		t.Fatalf("grayzone shift list: exit %d: %s", code, errb.String())
	}
	var listed []shift.Shift
	if err := json.Unmarshal(out.Bytes(), &listed); err != nil || len(listed) != 1 || listed[0].ID != sh.ID {
		t.Fatalf("grayzone shift list --output json = %s (%v), want the shift %s", out.String(), err, sh.ID)
	}
	waitJS(t, tctx, 20*time.Second, "z1 ISOLATED — SHIFTED", `document.querySelector('[data-zone="z1"] .verdict').textContent === 'ISOLATED — SHIFTED'`)
	waitJS(t, tctx, 20*time.Second, "the shift's row", fmt.Sprintf(`!!document.querySelector('#shifts tr[data-shift=%q] button.extend')`, sh.ID))

	// Extend it from the page: 1 h becomes 2 h from now.
	if err := chromedp.Do(tctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#shifts tr[data-shift=%q] button.extend`, sh.ID)))); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		got, err := client.Shift(context.Background(), sh.ID)
		if err == nil && got.ExpiresAt.Sub(sh.ExpiresAt) > 30*time.Minute {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("extend from the page: expiry %v, was %v", got.ExpiresAt, sh.ExpiresAt)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Let the shift show on the charts for a while, then picture it.
	time.Sleep(11 * time.Second)
	screenshot(t, tctx, "dashboard-shift.png")

	// End it from the page (two clicks: it sends traffic back).
	end := chromedp.CSS(fmt.Sprintf(`#shifts tr[data-shift=%q] button.end`, sh.ID))
	if err := chromedp.Do(tctx, chromedp.Click(end), chromedp.Click(end)); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		got, err := client.Shift(context.Background(), sh.ID)
		if err == nil && got.Status == shift.Canceled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("end from the page: shift is %+v", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitJS(t, tctx, 20*time.Second, "the audit log to show the cancel", `document.querySelector('#audit tbody').innerText.includes('shift_canceled')`)
}

func TestLabReportInBrowser(t *testing.T) {
	ctx := browser(t, nil)
	sc, err := scenario.Builtin("workshop-db-packet-loss")
	if err != nil {
		t.Fatal(err)
	}
	r, err := lab.Run(context.Background(), lab.Options{Scenario: sc, Mode: lab.ModeSim, Baseline: true})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := dashboard.WriteReport(&buf, r, labreport.Scene(r, sc)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(artifacts(t), "lab-report.html")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("report: %s", path)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(1440, 1000), chromedp.Navigate("file://"+path)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, tctx, 10*time.Second, "the report's charts", `!!window.grayzoneReport`)
	if n := evalInt(t, tctx, `window.grayzoneReport.avail.u.data[0].length`); n < 100 {
		t.Errorf("availability chart has %d points, want the whole run", n)
	}
	if n := evalInt(t, tctx, `window.grayzoneReport.avail.u.data[1].filter(v => v != null).length`); n == 0 {
		t.Errorf("availability chart: no use2-az1 values drawn")
	}
	headline, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`#headline`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(headline, "use2-az1") || !strings.Contains(headline, "saved") {
		t.Errorf("headline %q: want it to name use2-az1 and what grayzone saved", headline)
	}
	screenshot(t, tctx, "lab-report.png")
}
