package resource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/engine/autoshift"
	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

var (
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	zones = []string{"z1", "z2", "z3"}
)

// drive feeds secs seconds of traffic, failing's instances and canary
// faulting half their calls, and ticks d every 250 ms from *now.
func drive(d *Driver, now *time.Time, secs int, failing string) {
	for range secs * 4 {
		for _, z := range zones {
			for i := range 10 {
				o := observation.Observation{At: *now, Source: observation.Server, Zone: z, Instance: fmt.Sprintf("%s-%d", z, i%2+1), Operation: "ride", Latency: 5 * time.Millisecond}
				if z == failing && i%4 < 2 {
					o.Outcome = observation.Fault
				}
				d.Ctrl.ObserveAggregates([]record.Aggregate{record.Single(o)})
			}
			o := observation.Observation{At: *now, Source: observation.Canary, Zone: z, Operation: "home", Latency: 5 * time.Millisecond}
			if z == failing {
				o.Outcome = observation.Fault
			}
			d.Ctrl.ObserveAggregates([]record.Aggregate{record.Single(o)})
		}
		*now = now.Add(250 * time.Millisecond)
		d.Tick(context.Background(), *now)
	}
}

func newCtrl(t *testing.T) *autoshift.Controller {
	t.Helper()
	eng, err := detect.New(detect.Config{Zones: zones})
	if err != nil {
		t.Fatal(err)
	}
	return autoshift.New(autoshift.Options{Engine: eng, Runbook: runbook.New(runbook.Policy{Resource: "web", NoControlPlane: true}),
		Mitigate: true, Log: slog.New(slog.DiscardHandler)})
}

// A concurrent action that hangs does not hold up ticks or observations,
// and its answer is stamped with the driver's clock.
func TestConcurrentActionDoesNotBlockTicks(t *testing.T) {
	release := make(chan struct{})
	fc := clock.NewFake(t0.Add(time.Hour))
	table := frontdoor.NewTable(zones, frontdoor.DefaultHealthPolicy)
	d := &Driver{Ctrl: newCtrl(t), Now: fc.Now, Log: slog.New(slog.DiscardHandler),
		Actuator: actuator.Func(func(ctx context.Context, a actuator.Action) error {
			<-release
			return frontdoor.Actuator{Table: table}.Apply(ctx, a)
		})}
	now := t0
	drive(d, &now, 10, "")
	drive(d, &now, 5, "z1") // the shift is decided and hangs on the wire
	if ph, _ := d.Ctrl.Phase(); ph != runbook.Shifting {
		t.Fatalf("phase %s, want shifting while the action hangs", ph)
	}
	drive(d, &now, 2, "z1") // ticks go on
	close(release)
	d.Wait()
	if !table.Shifted("z1") {
		t.Fatal("action did not complete")
	}
	evs := d.Ctrl.Events()
	if last := evs[len(evs)-1]; last.Kind != runbook.ShiftStarted || !last.At.Equal(fc.Now()) {
		t.Errorf("last event %+v, want shift_started at the driver's clock %v", last, fc.Now())
	}
}

// The runbook's state is saved before an action starts; when the save
// fails, the action is not started but answered as failed, and audited.
func TestSaveBeforeApplyAndNothingStartedWhenItFails(t *testing.T) {
	var mu sync.Mutex
	var log []string
	saveErr := errors.New("fenced: not the leader")
	failing := true
	d := &Driver{Ctrl: newCtrl(t), Inline: true, Log: slog.New(slog.DiscardHandler),
		Save: func(_ context.Context, st runbook.State) error {
			mu.Lock()
			defer mu.Unlock()
			log = append(log, "save "+string(st.Phase))
			if failing {
				return saveErr
			}
			return nil
		},
		Actuator: actuator.Func(func(_ context.Context, a actuator.Action) error {
			mu.Lock()
			defer mu.Unlock()
			log = append(log, "apply "+string(a.Kind))
			return nil
		})}
	var audits []autoshift.AuditEvent
	d.Audit = func(e autoshift.AuditEvent) { audits = append(audits, e) }
	now := t0
	drive(d, &now, 10, "")
	drive(d, &now, 5, "z1")
	for _, l := range log {
		if l == "apply shift_away" {
			t.Fatalf("applied although the save failed: %q", log)
		}
	}
	failed := 0
	for _, e := range audits {
		if e.Kind == "action_failed" {
			failed++
		}
	}
	if failed == 0 {
		t.Errorf("no failed attempt audited: %+v", audits)
	}
	failing = false
	log = nil
	drive(d, &now, 5, "z1")
	if len(log) < 2 || log[0] != "save shifting" || log[1] != "apply shift_away" {
		t.Errorf("want the save before the action, got %q", log)
	}
}
