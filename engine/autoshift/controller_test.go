package autoshift

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

var (
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	zones = []string{"z1", "z2", "z3"}
)

// rig is a controller over the real engine, runbook and front door table,
// with a control plane that records what it is asked (and fails on demand).
type rig struct {
	c     *Controller
	table *frontdoor.Table
	act   actuator.Actuator
	now   time.Time

	mu      sync.Mutex
	control []string
	cpErr   error
	audit   []AuditEvent
}

type opts struct {
	guard    func(time.Time, string, string) error
	mitigate bool
	ramp     []int
}

func newRig(t *testing.T, o opts) *rig {
	t.Helper()
	eng, err := detect.New(detect.Config{Zones: zones})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{table: frontdoor.NewTable(zones, frontdoor.DefaultHealthPolicy), now: t0}
	r.act = actuator.Planes{Data: frontdoor.Actuator{Table: r.table}, Control: actuator.Func(func(_ context.Context, a actuator.Action) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.control = append(r.control, a.String())
		return r.cpErr
	})}
	r.c = New(Options{
		Engine:   eng,
		Runbook:  runbook.New(runbook.Policy{Resource: "web", ControlPlaneAfter: 10 * time.Second, RecoveryHold: 10 * time.Second, Ramp: o.ramp}),
		Mitigate: o.mitigate,
		Guard:    o.guard,
		Log:      slog.New(slog.DiscardHandler),
	})
	return r
}

// tick is the caller's half, inline: carry out the Ready's actions in order
// and answer each at once.
func (r *rig) tick() detect.Assessment {
	rd := r.c.Tick(r.now)
	r.record(rd.Audit)
	for _, act := range rd.Actions {
		r.record(r.c.Ack(r.now, rd.Epoch, act, r.act.Apply(context.Background(), act)))
	}
	return rd.Assessment
}

func (r *rig) record(evs []AuditEvent) {
	r.mu.Lock()
	r.audit = append(r.audit, evs...)
	r.mu.Unlock()
}

// run feeds secs seconds of traffic, ticking every 250 ms: 10 server
// requests per zone per tick over two instances, one zonal canary call per
// zone; failing's instances and canary fault half their calls. With server
// false only the canaries report.
func (r *rig) run(secs int, failing string, server bool) detect.Assessment {
	var a detect.Assessment
	for range secs * 4 {
		r.feed(failing, server)
		r.now = r.now.Add(250 * time.Millisecond)
		a = r.tick()
	}
	return a
}

func (r *rig) audits(kind string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.audit {
		if e.Kind == kind {
			out = append(out, e.Msg)
		}
	}
	return out
}

func eventKinds(c *Controller) string {
	var ks []string
	for _, ev := range c.Events() {
		ks = append(ks, string(ev.Kind))
	}
	return strings.Join(ks, " ")
}

func TestShiftExcludeAndRecoverInOrder(t *testing.T) {
	r := newRig(t, opts{mitigate: true})
	r.run(10, "", true)
	if r.table.Shifted("z2") || len(r.c.Detections()) != 0 {
		t.Fatal("shifted with no impact")
	}
	r.run(5, "z2", true)
	if !r.table.Shifted("z2") {
		t.Fatalf("z2 not shifted; why: %s", r.c.Last().Why)
	}
	ds := r.c.Detections()
	if len(ds) != 1 || ds[0].Zone != "z2" || ds[0].Alarm != "z2-isolated-impact" || !strings.Contains(ds[0].Why, "z2: isolated") {
		t.Fatalf("detections %+v", ds)
	}
	if ph, z := r.c.Phase(); ph != runbook.Shifted || z != "z2" {
		t.Fatalf("phase %s %s", ph, z)
	}
	// The zone keeps failing past control_plane_after: excluded.
	r.run(12, "z2", true)
	// Healthy again: capacity back first, then the shift ends, then the extra capacity goes.
	r.run(30, "", true)
	if r.table.Shifted("z2") {
		t.Fatalf("still shifted after recovery: %s", eventKinds(r.c))
	}
	if got, want := eventKinds(r.c), "decided shift_started excluded recovered included shift_ended extra_removed"; got != want {
		t.Errorf("events %q, want %q", got, want)
	}
	if got := strings.Join(r.control, ", "); got != "exclude_zone web/z2, include_zone web/z2, remove_extra web/z2" {
		t.Errorf("control plane saw %s", got)
	}
	if d := r.audits("decision"); len(d) != 1 || !strings.HasPrefix(d[0], "isolated impact: z2") {
		t.Errorf("decision audits %q", d)
	}
	if len(r.audits("action")) != 5 {
		t.Errorf("action audits %q", r.audits("action"))
	}
}

func TestGuardVetoIsAuditedOncePerRise(t *testing.T) {
	calls := 0
	r := newRig(t, opts{mitigate: true, guard: func(_ time.Time, zone, why string) error {
		calls++
		if zone != "z1" || why == "" {
			return fmt.Errorf("unexpected guard call %s %q", zone, why)
		}
		return errors.New("dry run")
	}})
	r.run(10, "", true)
	r.run(10, "z1", true)
	if r.table.Shifted("z1") {
		t.Fatal("shifted despite the veto")
	}
	if v := r.audits("vetoed"); calls < 2 || len(v) != 1 || !strings.Contains(v[0], "shift of z1 not started: dry run") {
		t.Errorf("guard called %d times; vetoed audits %q", calls, v)
	}
}

func TestWithoutMitigationDetectsOnly(t *testing.T) {
	r := newRig(t, opts{})
	r.run(10, "", true)
	r.run(10, "z3", true)
	if len(r.c.Detections()) != 1 || r.c.Mitigating() {
		t.Fatalf("detections %+v", r.c.Detections())
	}
	if r.table.Shifted("z3") || len(r.c.Events()) != 0 || len(r.control) != 0 {
		t.Errorf("acted without mitigation: %s %v", eventKinds(r.c), r.control)
	}
}

// A failing control plane never holds up the data plane; the exclusion is
// retried and audited each time it fails.
func TestControlPlaneFailureRetriedDataPlaneStays(t *testing.T) {
	r := newRig(t, opts{mitigate: true})
	r.cpErr = errors.New("autoscaling unavailable")
	r.run(10, "", true)
	r.run(20, "z2", true)
	if !r.table.Shifted("z2") {
		t.Fatal("data plane waited on the control plane")
	}
	if n := len(r.audits("action_failed")); n < 2 {
		t.Errorf("%d failed attempts audited, want retries", n)
	}
	if p := r.c.Pending(); len(p) != 1 || p[0].Kind != actuator.ExcludeZone {
		t.Errorf("pending %v", p)
	}
	r.cpErr = nil
	r.run(12, "z2", true)
	if st, _ := r.c.RunbookState(); !st.Excluded {
		t.Errorf("not excluded once the control plane is back: %+v", st)
	}
}

// An operator ending the shift abandons the episode: the zone is not
// shifted again until its alarm clears and rises anew.
func TestAbandonDisarmsUntilTheAlarmRisesAgain(t *testing.T) {
	r := newRig(t, opts{mitigate: true})
	r.run(10, "", true)
	r.run(5, "z1", true)
	if !r.table.Shifted("z1") {
		t.Fatal("no shift")
	}
	_ = r.table.SetShifted("z1", false) // the operator ends it at the front door
	r.record(r.c.Abandon(r.now, "cancelled by an operator"))
	r.run(5, "z1", true)
	if r.table.Shifted("z1") {
		t.Fatal("shifted again while the same alarm was still up")
	}
	if a := r.audits("decision"); len(a) != 2 || !strings.Contains(a[1], "abandoned: cancelled by an operator") {
		t.Errorf("decision audits %q", a)
	}
	r.run(40, "", true) // the alarm clears
	r.run(5, "z1", true)
	if !r.table.Shifted("z1") {
		t.Errorf("a new rise was not shifted: %s", r.c.Last().Why)
	}
}

// While the view is in doubt, a shift in force is neither ended nor added
// to, and the start and end of the doubt are audited.
func TestFailStaticFreezesRecovery(t *testing.T) {
	r := newRig(t, opts{mitigate: true})
	r.run(10, "", true)
	r.run(5, "z2", true)
	r.run(30, "", false) // canaries see z2 healthy, but no zone reports
	if !r.table.Shifted("z2") {
		t.Fatalf("shift ended while in doubt: %s", eventKinds(r.c))
	}
	ps := r.c.FailStaticPeriods()
	if len(ps) != 1 || ps[0].Reason != detect.ReasonTelemetryLost || !ps[0].End.IsZero() {
		t.Fatalf("fail static periods %+v", ps)
	}
	r.run(5, "", true)
	if ps := r.c.FailStaticPeriods(); len(ps) != 1 || ps[0].End.IsZero() {
		t.Fatalf("doubt did not end with telemetry back: %+v", ps)
	}
	if !r.table.Shifted("z2") {
		t.Fatal("shift ended before a whole recovery hold after the doubt")
	}
	r.run(20, "", true)
	if r.table.Shifted("z2") {
		t.Errorf("shift not ended after the hold: %s", eventKinds(r.c))
	}
	fs := r.audits("fail_static")
	if len(fs) != 2 || !strings.Contains(fs[0], "fail static (telemetry_lost): no server observations") || !strings.Contains(fs[1], "ended after") {
		t.Errorf("fail_static audits %q", fs)
	}
}

// An action's answer for a runbook since replaced (a new leadership) is
// dropped; the Ready's state is saved before its actions start.
func TestAckOfAnEarlierEpochIsDropped(t *testing.T) {
	r := newRig(t, opts{mitigate: true})
	r.run(10, "", true)
	var rd Ready
	for range 5 * 4 { // the shift is decided; its action is not answered
		r.now = r.now.Add(250 * time.Millisecond)
		r.feed("z1", true)
		if rd = r.c.Tick(r.now); len(rd.Actions) > 0 {
			break
		}
	}
	if len(rd.Actions) != 1 || rd.Actions[0].Kind != actuator.ShiftAway || rd.State.Phase != runbook.Shifting {
		t.Fatalf("ready %+v", rd)
	}
	r.c.SetRunbook(runbook.New(runbook.Policy{Resource: "web"}))
	if evs := r.c.Ack(r.now, rd.Epoch, rd.Actions[0], nil); len(evs) != 0 {
		t.Errorf("an answer to the old runbook was taken: %+v", evs)
	}
	if ph, _ := r.c.Phase(); ph != runbook.Idle {
		t.Errorf("phase %s after the stale answer, want idle", ph)
	}
}

// feed is one tick's traffic: 10 server requests per zone over two
// instances, one zonal canary call per zone; failing's instances and canary
// fault half their calls. With server false only the canaries report.
func (r *rig) feed(failing string, server bool) {
	for _, z := range zones {
		for i := range 10 {
			if !server {
				break
			}
			o := observation.Observation{At: r.now, Source: observation.Server, Zone: z, Instance: fmt.Sprintf("%s-%d", z, i%2+1), Operation: "ride", Latency: 5 * time.Millisecond}
			if z == failing && i%4 < 2 {
				o.Outcome = observation.Fault
			}
			r.c.ObserveAggregates([]record.Aggregate{record.Single(o)})
		}
		o := observation.Observation{At: r.now, Source: observation.Canary, Zone: z, Operation: "home", Latency: 5 * time.Millisecond}
		if z == failing {
			o.Outcome = observation.Fault
		}
		r.c.ObserveAggregates([]record.Aggregate{record.Single(o)})
	}
}
