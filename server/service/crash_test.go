package service_test

// The crash test: grayzone serve runs the whole runbook (shift → exclude →
// include → end shift → remove extra) again and again while a killer sends
// it SIGKILL at random moments and restarts it. Afterwards the control
// plane's own log and grayzone's state must show: never a second zone, every
// exclusion undone exactly once, the shift ended only after capacity was
// back, and a complete audit log.
//
//	go test ./server/service -run TestCrashRunbook -v                               # CI: 12 kills
//	GRAYZONE_CRASH_KILLS=60 go test ./server/service -run TestCrashRunbook -v -timeout 30m
//	GRAYZONE_CRASH_SEED=1234 ...                                                     # replay a run
//	GRAYZONE_CRASH_STORE=postgres ...                                                # on PostgreSQL

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/internal/freeport"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/store"
	"github.com/grayzone/grayzone/telemetry/batch"
)

// controlPlaneScript is the control plane under test: it logs every
// invocation (with its parent, i.e. the serve process that ran it), takes
// effect once per action ID (the idempotency token a real control plane
// would get), refuses orders whose fencing token is older than one it has
// seen, and takes a while, so that kills land in the middle of a step.
const controlPlaneScript = `#!/bin/sh
dir=$(dirname "$0")
exec 9>"$dir/lock"
flock 9
now=$(date +%s%N)
fence=${GRAYZONE_FENCE:-0}
echo "$now call $GRAYZONE_ACTION $GRAYZONE_ZONE $GRAYZONE_ACTION_ID $fence $PPID" >> "$dir/calls.log"
seen=$(cat "$dir/fence" 2>/dev/null || echo 0)
if [ "$fence" -lt "$seen" ]; then
  echo "$now refused $GRAYZONE_ACTION $GRAYZONE_ZONE $GRAYZONE_ACTION_ID $fence $PPID" >> "$dir/calls.log"
  echo "fencing token $fence is older than $seen" >&2
  exit 1
fi
echo "$fence" > "$dir/fence"
flock -u 9
sleep "$(cat "$dir/delay" 2>/dev/null || echo 0.2)"
flock 9
if ! grep -q " $GRAYZONE_ACTION_ID " "$dir/effects.log" 2>/dev/null; then
  echo "$(date +%s%N) $GRAYZONE_ACTION $GRAYZONE_ZONE $GRAYZONE_ACTION_ID $fence $PPID" >> "$dir/effects.log"
fi
`

// controlPlane is a directory holding the script and its logs.
type controlPlane struct{ dir string }

func newControlPlane(t *testing.T) controlPlane {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cp.sh"), []byte(controlPlaneScript), 0o755); err != nil {
		t.Fatal(err)
	}
	return controlPlane{dir: dir}
}

// yaml is the resource's control_plane section.
func (cp controlPlane) yaml() string {
	s := filepath.Join(cp.dir, "cp.sh")
	return fmt.Sprintf("    control_plane: {type: command, exclude_zone: [%s], include_zone: [%s], remove_extra: [%s], timeout: 10s}\n", s, s, s)
}

// cpLine is one line of calls.log or effects.log.
type cpLine struct {
	at     time.Time
	what   string // call, refused (calls.log); the kind (effects.log)
	kind   string
	zone   string
	id     string
	fence  uint64
	parent string // pid of the serve process that ran it
}

func (cp controlPlane) read(t *testing.T, name string) []cpLine {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(cp.dir, name))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []cpLine
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(l)
		if name == "effects.log" {
			f = append(f[:1], append([]string{"effect"}, f[1:]...)...)
		}
		if len(f) != 7 {
			t.Fatalf("%s: malformed line %q", name, l)
		}
		ns, _ := strconv.ParseInt(f[0], 10, 64)
		fence, _ := strconv.ParseUint(f[5], 10, 64)
		out = append(out, cpLine{at: time.Unix(0, ns), what: f[1], kind: f[2], zone: f[3], id: f[4], fence: fence, parent: f[6]})
	}
	return out
}

// observe posts a tenth of a second of traffic: failing's instances fault
// three requests in four and its canary fails; every other zone is healthy.
func observe(c *api.Client, zones []string, failing string) error {
	return observeResource(c, "web", zones, failing)
}

// observeResource is observe for the resource named resource.
func observeResource(c *api.Client, resource string, zones []string, failing string) error {
	var obs []batch.ObservationIn
	for _, z := range zones {
		for i := 0; i < 40; i++ {
			o := batch.ObservationIn{Source: "server", Zone: z, Instance: fmt.Sprintf("%s-%d", z, i%2+1), Operation: "ride", Outcome: "success", LatencyMs: 4}
			if z == failing && i%4 != 3 {
				o.Outcome = "fault"
			}
			obs = append(obs, o)
		}
		o := batch.ObservationIn{Source: "canary", Zone: z, Operation: "home", Outcome: "success", LatencyMs: 4}
		if z == failing {
			o.Outcome = "fault"
		}
		obs = append(obs, o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.Ingest(ctx, batch.ObservationBatch{Resource: resource, Observations: obs})
	return err
}

func envInt(t *testing.T, name string, def int64) int64 {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: want an integer", name, v)
	}
	return n
}

func TestCrashRunbook(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts grayzone serve for about a minute")
	}
	t.Parallel()
	kills := int(envInt(t, "GRAYZONE_CRASH_KILLS", 12))
	seed := uint64(envInt(t, "GRAYZONE_CRASH_SEED", time.Now().UnixNano()))
	t.Logf("crash test: %d kills, seed %d (replay with GRAYZONE_CRASH_SEED=%d)", kills, seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	cp := newControlPlane(t)
	listen := freeport.Addr(t)
	// GRAYZONE_CRASH_STORE=postgres runs it on a throwaway PostgreSQL, as a
	// replica that takes its lease back (with a new epoch) at every restart.
	head := ""
	if os.Getenv("GRAYZONE_CRASH_STORE") == "postgres" {
		head = fmt.Sprintf("store: %s\nreplica: {name: crash, lease: 3s}\n", throwawayPostgres(t))
	}
	cfg := writeConfig(t, "serve", head, backends(t, 6), `    autoshift: {enabled: true, min_interval: 0s, expires_in: 1h, control_plane_after: 1s, recovery_hold: 2s}
`+cp.yaml())
	data := t.TempDir()
	args := []string{"--config", cfg, "--data-dir", data, "--listen", listen}
	zones := []string{"z1", "z2", "z3"}
	c := api.NewClient("http://"+listen, "test-token-0123456789abcdef")

	// The killer: SIGKILL at a random moment 0.3–3 s after each start, then
	// restart at once. The driver below keeps talking to the same address.
	var mu sync.Mutex
	srv := startServe(t, args...)
	done := make(chan struct{})
	killed := 0
	stopKiller := make(chan struct{})
	go func() {
		defer close(done)
		for killed < kills {
			d := 300*time.Millisecond + time.Duration(rng.Int64N(int64(2700*time.Millisecond)))
			select {
			case <-stopKiller:
				return
			case <-time.After(d):
			}
			mu.Lock()
			srv.kill()
			killed++
			srv = startServeQuiet(t, args...)
			mu.Unlock()
			if srv == nil {
				t.Errorf("grayzone serve did not restart after kill %d", killed)
				return
			}
		}
	}()

	status := func() (api.ResourceStatus, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := c.Status(ctx)
		if err != nil || len(st.Resources) == 0 {
			return api.ResourceStatus{}, false
		}
		return st.Resources[0], true
	}
	// drive feeds traffic with failing's impact until cond holds.
	drive := func(what, failing string, cond func(api.ResourceStatus) bool) {
		deadline := time.Now().Add(3 * time.Minute)
		for time.Now().Before(deadline) {
			_ = observe(c, zones, failing) // fails while serve is down: fine
			if st, ok := status(); ok && cond(st) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		mu.Lock()
		logs := ""
		if srv != nil {
			logs = srv.logs.String()
		}
		mu.Unlock()
		t.Fatalf("episode step %q not reached in 3 minutes (seed %d); serve's log:\n%s", what, seed, logs)
	}
	episodes := 0
	for ep := 0; ; ep++ {
		zone := zones[ep%len(zones)]
		drive("shifted and excluded "+zone, zone, func(st api.ResourceStatus) bool {
			return st.ActiveShift != nil && st.ActiveShift.AwayFrom == zone && slices.Contains(st.Excluded, zone)
		})
		drive("recovered from "+zone, "", func(st api.ResourceStatus) bool {
			return st.Phase == "idle" && st.ActiveShift == nil && len(st.Pending) == 0 && len(st.Excluded) == 0
		})
		episodes++
		mu.Lock()
		k := killed
		mu.Unlock()
		t.Logf("episode %d (%s) complete after %d kills", episodes, zone, k)
		if k >= kills {
			break
		}
	}
	close(stopKiller)
	<-done
	// Let orphaned control-plane commands of killed processes finish.
	time.Sleep(time.Second)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d episodes, %d kills, seed %d", episodes, killed, seed)
	checkRunbookInvariants(t, c, cp, episodes)
}

// startServeQuiet is startServe for the killer goroutine: it reports failure
// with t.Error (t.Fatal must not be called outside the test's goroutine).
func startServeQuiet(t *testing.T, args ...string) *server {
	var s *server
	ok := make(chan bool, 1)
	go func() {
		defer func() { ok <- s != nil }()
		s = startServe(t, args...)
	}()
	<-ok
	return s
}

func checkRunbookInvariants(t *testing.T, c *api.Client, cp controlPlane, episodes int) {
	t.Helper()
	ctx := context.Background()
	shifts, err := c.Shifts(ctx, shift.ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(shifts, func(a, b shift.Shift) int { return a.StartedAt.Compare(b.StartedAt) })
	var audit []store.AuditEntry
	for before := int64(0); ; {
		page, err := c.Audit(ctx, store.AuditQuery{Resource: "web", Before: before, Limit: store.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		audit = append(audit, page...)
		if len(page) < store.MaxLimit {
			break
		}
		before = page[len(page)-1].Seq
	}
	calls, effects := cp.read(t, "calls.log"), cp.read(t, "effects.log")
	t.Logf("%d shifts, %d control-plane calls, %d effects, %d audit entries", len(shifts), len(calls), len(effects), len(audit))

	// Never a second zone: automatic shifts only, one at a time, all ended by the runbook.
	if len(shifts) != episodes {
		t.Errorf("%d shifts for %d episodes", len(shifts), episodes)
	}
	for i, sh := range shifts {
		if sh.Origin != shift.Auto || sh.Status != shift.Canceled || sh.EndedAt == nil {
			t.Errorf("shift %s: origin %s status %s: want auto, ended by the runbook", sh.ID, sh.Origin, sh.Status)
			continue
		}
		if i > 0 && shifts[i-1].EndedAt != nil && sh.StartedAt.Before(*shifts[i-1].EndedAt) {
			t.Errorf("shift %s (%s) started at %s while %s (%s) was active until %s: a second zone",
				sh.ID, sh.AwayFrom, sh.StartedAt, shifts[i-1].ID, shifts[i-1].AwayFrom, shifts[i-1].EndedAt)
		}
	}

	// Every exclusion undone exactly once: per episode (action ID prefix),
	// exactly one effective exclude, include and remove_extra, in that order.
	type ep struct{ exclude, include, remove []cpLine }
	byEp := map[string]*ep{}
	for _, e := range effects {
		key := e.id[:strings.LastIndex(e.id[:strings.LastIndex(e.id, "/")], "/")] // web/N
		if byEp[key] == nil {
			byEp[key] = &ep{}
		}
		switch e.kind {
		case "exclude_zone":
			byEp[key].exclude = append(byEp[key].exclude, e)
		case "include_zone":
			byEp[key].include = append(byEp[key].include, e)
		case "remove_extra":
			byEp[key].remove = append(byEp[key].remove, e)
		}
	}
	if len(byEp) != episodes {
		t.Errorf("control-plane effects from %d episodes, want %d", len(byEp), episodes)
	}
	for key, e := range byEp {
		if len(e.exclude) != 1 || len(e.include) != 1 || len(e.remove) != 1 {
			t.Errorf("episode %s: %d exclusions, %d inclusions, %d removals of extra capacity; want one each", key, len(e.exclude), len(e.include), len(e.remove))
			continue
		}
		if !(e.exclude[0].at.Before(e.include[0].at) && e.include[0].at.Before(e.remove[0].at)) {
			t.Errorf("episode %s: exclude %s, include %s, remove_extra %s: out of order", key, e.exclude[0].at, e.include[0].at, e.remove[0].at)
		}
		// The shift ended only after capacity was back.
		for _, sh := range shifts {
			if sh.AwayFrom == e.exclude[0].zone && !sh.StartedAt.After(e.exclude[0].at) && sh.EndedAt != nil && sh.EndedAt.After(e.exclude[0].at) {
				if !sh.EndedAt.After(e.include[0].at) {
					t.Errorf("episode %s: shift %s ended at %s, before the zone was included at %s", key, sh.ID, sh.EndedAt, e.include[0].at)
				}
				if e.remove[0].at.Before(*sh.EndedAt) {
					t.Errorf("episode %s: extra capacity removed at %s, before shift %s ended at %s", key, e.remove[0].at, sh.ID, sh.EndedAt)
				}
			}
		}
	}
	// A command runs again only after the process that ran it was killed:
	// never twice by one process, and always under the same action ID.
	ran := map[string]map[string]bool{} // id -> parents
	for _, cl := range calls {
		if cl.what != "call" {
			t.Errorf("control plane refused an order: %+v", cl)
			continue
		}
		if ran[cl.id] == nil {
			ran[cl.id] = map[string]bool{}
		}
		if ran[cl.id][cl.parent] {
			t.Errorf("action %s ran twice in serve process %s", cl.id, cl.parent)
		}
		ran[cl.id][cl.parent] = true
	}
	reruns := 0
	for _, p := range ran {
		reruns += len(p) - 1
	}
	t.Logf("%d actions re-run after a kill (same ID: taken into effect once)", reruns)

	// The audit log is complete: every shift's start and end, every effective action.
	has := func(kind, sub string) bool {
		for _, e := range audit {
			if e.Kind == kind && (strings.Contains(e.Message, sub) || strings.Contains(string(e.Detail), sub)) {
				return true
			}
		}
		return false
	}
	for _, sh := range shifts {
		if !has("shift_started", sh.ID) || !has("shift_ended", sh.ID) {
			t.Errorf("audit log lacks the start or end of shift %s", sh.ID)
		}
	}
	for _, e := range effects {
		if !has("action", `"action_id":"`+e.id+`"`) {
			t.Errorf("audit log lacks action %s (%s %s)", e.id, e.kind, e.zone)
		}
	}
	for i := 1; i < len(audit); i++ {
		if audit[i].Seq >= audit[i-1].Seq {
			t.Fatalf("audit seqs not strictly decreasing in a newest-first listing")
		}
	}
	var d []byte
	if t.Failed() {
		d, _ = json.MarshalIndent(shifts, "", " ")
		t.Logf("shifts: %s", d)
	}
}
