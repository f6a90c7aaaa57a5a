package service_test

// End-to-end tests of grayzone serve as a real process: built once, started,
// killed with SIGKILL, restarted, driven through its CLI and HTTP API.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/internal/freeport"
	"github.com/grayzone/grayzone/internal/kubetest"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/store"
	"github.com/grayzone/grayzone/telemetry/batch"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "grayzone-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "grayzone")
	build := []string{"build", "-o", binary}
	if os.Getenv("GRAYZONE_TEST_RACE") != "" { // the processes under test run with the race detector
		build = append(build, "-race")
	}
	out, err := exec.Command("go", append(build, "../../cmd/grayzone")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build grayzone: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	stopPostgres()
	kubetest.StopShared()
	os.RemoveAll(dir)
	os.Exit(code)
}

// exampleToken is the token examples/tokens.txt ships.
func exampleToken(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../examples/tokens.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			_, secret, _ := strings.Cut(l, ":") // name:token[:scopes]
			secret, _, _ = strings.Cut(secret, ":")
			return secret
		}
	}
	t.Fatal("no token in examples/tokens.txt")
	return ""
}

type server struct {
	cmd  *exec.Cmd
	addr string
	logs *bytes.Buffer
	args []string // to start it again
}

var upLine = regexp.MustCompile(`API and dashboard on http://(\S+)`)

// startServe runs grayzone serve and waits until its API answers.
func startServe(t *testing.T, args ...string) *server {
	t.Helper()
	return startServeEnv(t, nil, args...)
}

// startServeEnv is startServe with env added to the process's environment.
func startServeEnv(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	level := "warn"
	if l := os.Getenv("GRAYZONE_TEST_LOG_LEVEL"); l != "" {
		level = l
	}
	cmd := exec.Command(binary, append([]string{"serve", "--listen", "127.0.0.1:0", "--log-level", level}, args...)...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, logs: logs, args: args}
	t.Cleanup(func() { s.kill() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := upLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case s.addr = <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("grayzone serve did not come up; stderr:\n%s", logs.String())
	}
	return s
}

func (s *server) kill() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		_, _ = s.cmd.Process.Wait()
	}
}

func (s *server) url() string { return "http://" + s.addr }

// cli runs a grayzone client command against s.
func (s *server) cli(t *testing.T, token string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "GRAYZONE_SERVER="+s.url(), "GRAYZONE_TOKEN="+token)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String() + errb.String(), code
}

func (s *server) shifts(t *testing.T) []map[string]any {
	t.Helper()
	out, code := s.cli(t, "", "shift", "list", "--output", "json")
	if code != 0 {
		t.Fatalf("shift list: exit %d: %s", code, out)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("shift list json: %v\n%s", err, out)
	}
	return list
}

func TestServeShiftSurvivesKill9AndExpiresWhileDown(t *testing.T) {
	if testing.Short() {
		t.Skip("runs grayzone serve for over a minute")
	}
	t.Parallel()
	data := t.TempDir()
	token := exampleToken(t)
	s := startServe(t, "--config", "../../examples/serve.yaml", "--data-dir", data)

	out, code := s.cli(t, token, "shift", "start", "--resource", "web", "--away-from", "use2-az1", "--expires-in", "1m", "--comment", "kill -9 test")
	if code != 0 {
		t.Fatalf("shift start: exit %d: %s", code, out)
	}
	before := s.shifts(t)
	if len(before) != 1 || before[0]["status"] != "ACTIVE" {
		t.Fatalf("shifts after start: %v", before)
	}
	id, expires := before[0]["id"], before[0]["expires_at"]
	if !strings.Contains(out, id.(string)) {
		t.Errorf("shift start output %q lacks the id %v", out, id)
	}

	// A mutation without the token is refused and changes nothing.
	out, code = s.cli(t, "", "shift", "cancel", id.(string))
	if code != 2 || !strings.Contains(out, "401") && !strings.Contains(strings.ToLower(out), "token") {
		t.Errorf("cancel without token: exit %d: %s", code, out)
	}
	resp, err := http.Post(s.url()+"/v1/shifts", "application/json", strings.NewReader(`{"resource":"web","away_from":"use2-az2","expires_in":"5m"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /v1/shifts without token: %d, want 401", resp.StatusCode)
	}
	if after := s.shifts(t); len(after) != 1 || after[0]["status"] != "ACTIVE" || after[0]["id"] != id {
		t.Fatalf("unauthorized calls changed the shifts: %v", after)
	}
	// The front door honours the shift: the zonal endpoint still answers (no
	// backends run here, so 502/503), and the shift is in /metrics.
	if m := get(t, s.url()+"/metrics"); !strings.Contains(m, `grayzone_zone_shifted{resource="web",zone="use2-az1"} 1`) {
		t.Errorf("metrics do not show the shift:\n%s", grep(m, "grayzone_zone_shifted"))
	}

	// kill -9, restart: the same shift, same id and expiry, still ACTIVE.
	s.kill()
	s = startServe(t, "--config", "../../examples/serve.yaml", "--data-dir", data)
	got := s.shifts(t)
	if len(got) != 1 || got[0]["id"] != id || got[0]["expires_at"] != expires || got[0]["status"] != "ACTIVE" {
		t.Fatalf("after kill -9 and restart: %v, want %v ACTIVE expiring %v", got, id, expires)
	}

	// kill -9 again and stay down past the expiry.
	s.kill()
	exp, err := time.Parse(time.RFC3339Nano, expires.(string))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(exp) + time.Second) // real time must pass while the process is gone
	s = startServe(t, "--config", "../../examples/serve.yaml", "--data-dir", data)
	got = s.shifts(t)
	if len(got) != 1 || got[0]["status"] != "EXPIRED" || got[0]["ended_at"] != expires {
		t.Fatalf("after an expiry passed while down: %v, want EXPIRED ending at %v", got, expires)
	}
	audit := get(t, s.url()+"/v1/audit?resource=web")
	if !strings.Contains(audit, "expired") {
		t.Errorf("audit lacks the expiry:\n%s", audit)
	}
}

// backends starts n healthy HTTP backends and returns their addresses.
func backends(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		out = append(out, ln.Addr().String())
	}
	return out
}

// testConfig writes a serve configuration over three zones z1..z3 with two
// live backends each, zonal canaries every second, and extra YAML appended
// to the resource.
func testConfig(t *testing.T, extra string) string {
	t.Helper()
	return writeConfig(t, "serve", "", backends(t, 6), extra)
}

// writeConfig writes a configuration named name: head (top-level keys), the
// resource web over the backends be (two per zone) with its own front door
// listeners and canaries, and extra YAML appended to the resource.
func writeConfig(t *testing.T, name, head string, be []string, extra string) string {
	t.Helper()
	zonal := map[string]string{"z1": freeport.Addr(t), "z2": freeport.Addr(t), "z3": freeport.Addr(t)}
	var b strings.Builder
	b.WriteString(head)
	fmt.Fprintf(&b, "auth: {tokens: [test-token-0123456789abcdef], open_reads: true}\nresources:\n  - name: web\n    zones: [z1, z2, z3]\n")
	fmt.Fprintf(&b, "    frontdoor:\n      type: embedded\n      regional: %s\n      zonal: {z1: %s, z2: %s, z3: %s}\n", freeport.Addr(t), zonal["z1"], zonal["z2"], zonal["z3"])
	b.WriteString("      health_check: {interval: 1s, timeout: 500ms}\n      targets:\n")
	for i, a := range be {
		fmt.Fprintf(&b, "        - {id: z%d-%d, zone: z%d, addr: %s}\n", i/2+1, i%2+1, i/2+1, a)
	}
	b.WriteString("    canaries:\n")
	for _, z := range []string{"z1", "z2", "z3"} {
		fmt.Fprintf(&b, "      - {zone: %s, url: http://%s, interval: 1s}\n", z, zonal[z])
	}
	b.WriteString(extra)
	p := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// failZone sends server-side observations: zone's two instances fail half
// their requests, the other zones none.
func failZone(t *testing.T, c *api.Client, zone string) {
	t.Helper()
	var obs []batch.ObservationIn
	for _, z := range []string{"z1", "z2", "z3"} {
		for i := 0; i < 80; i++ {
			o := batch.ObservationIn{Source: "server", Zone: z, Instance: fmt.Sprintf("%s-%d", z, i%2+1), Operation: "ride", Outcome: "success", LatencyMs: 4}
			if z == zone && i%2 == 0 || z == zone && i%4 == 1 {
				o.Outcome = "fault"
			}
			obs = append(obs, o)
		}
	}
	if _, err := c.Ingest(context.Background(), batch.ObservationBatch{Resource: "web", Observations: obs}); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond every 100 ms for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", d, what)
}

func TestServePracticeRunEndedByOutcomeAlarm(t *testing.T) {
	if testing.Short() {
		t.Skip("runs grayzone serve")
	}
	t.Parallel()
	cfg := testConfig(t, `    practice:
      enabled: true
      interval: 24h
      duration: 10m
      outcome_alarms: [z2-isolated-impact]
`)
	s := startServe(t, "--config", cfg, "--data-dir", t.TempDir())
	c := api.NewClient(s.url(), "test-token-0123456789abcdef")
	ctx := context.Background()
	// The first run is due at once: a practice shift away from z1.
	var practiceID string
	eventually(t, 20*time.Second, "the practice shift", func() bool {
		list, _ := c.Shifts(ctx, shift.ListFilter{})
		for _, sh := range list {
			if sh.Origin == shift.Practice && sh.Status == shift.Active && sh.AwayFrom == "z1" {
				practiceID = sh.ID
				return true
			}
		}
		return false
	})
	// Its outcome alarm goes off: z2 has isolated impact.
	var runs []store.PracticeRun
	eventually(t, 20*time.Second, "the practice run to fail", func() bool {
		failZone(t, c, "z2")
		runs, _ = c.Practices(ctx, "web", 10)
		return len(runs) > 0 && runs[0].Outcome != ""
	})
	if runs[0].Outcome != store.PracticeFailed || !strings.Contains(runs[0].Reason, "z2-isolated-impact") {
		t.Fatalf("practice run = %+v, want FAILED by z2-isolated-impact", runs[0])
	}
	sh, err := c.Shift(ctx, practiceID)
	if err != nil || sh.Status != shift.Canceled {
		t.Fatalf("practice shift after the run failed: %+v %v", sh, err)
	}
}

func TestServeNeverShiftsASecondZone(t *testing.T) {
	if testing.Short() {
		t.Skip("runs grayzone serve")
	}
	t.Parallel()
	cfg := testConfig(t, "")
	s := startServe(t, "--config", cfg, "--data-dir", t.TempDir())
	c := api.NewClient(s.url(), "test-token-0123456789abcdef")
	ctx := context.Background()
	manual, err := c.StartShift(ctx, api.StartShiftRequest{Resource: "web", AwayFrom: "z1", ExpiresIn: "1h", Comment: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	// A second zone by hand: refused.
	if _, err := c.StartShift(ctx, api.StartShiftRequest{Resource: "web", AwayFrom: "z2", ExpiresIn: "1h"}); err == nil ||
		!strings.Contains(err.Error(), "409") && !strings.Contains(strings.ToLower(err.Error()), "conflict") && !strings.Contains(err.Error(), "already") {
		t.Fatalf("second manual shift: %v, want a conflict", err)
	}
	// z2 fails in isolation: autoshift decides, and its guard vetoes a second zone.
	eventually(t, 20*time.Second, "the vetoed decision in the audit log", func() bool {
		failZone(t, c, "z2")
		entries, _ := c.Audit(ctx, store.AuditQuery{Resource: "web"})
		for _, e := range entries {
			if e.Kind == "vetoed" && e.Zone == "z2" && strings.Contains(e.Message, manual.ID) {
				return true
			}
		}
		return false
	})
	list, err := c.Shifts(ctx, shift.ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range list {
		if sh.AwayFrom != "z1" {
			t.Errorf("a second zone was shifted: %+v", sh)
		}
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Resources[0].Isolated != "z2" {
		t.Errorf("status isolated = %q, want z2 (detected, not acted on)", st.Resources[0].Isolated)
	}
}

// Bad configuration: one line naming file, line and key; exit 2; nothing starts.
func TestServeRejectsBadConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(p, []byte("resources:\n  - name: web\n    zones: [a, a]\n"), 0o644)
	cmd := exec.Command(binary, "serve", "--config", p)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2; stderr %s", err, errb.String())
	}
	line := strings.TrimSpace(errb.String())
	if strings.Contains(line, "\n") || !strings.Contains(line, "bad.yaml:3") || !strings.Contains(line, "zones") {
		t.Errorf("error %q: want one line naming bad.yaml:3 and zones", line)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return b.String()
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
