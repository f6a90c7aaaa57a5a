// Package resource assembles one resource, the same way for grayzone serve
// and for the lab: its controller and the driver that carries out what the
// controller decides.
package resource

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/engine/autoshift"
	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/runbook"
)

// Driver is the I/O half of a controller: at each tick it takes the
// controller's Ready, records its audit, saves the runbook's state before any
// action starts, applies the actions and acknowledges each answer. The
// controller (engine/autoshift) decides; only the driver waits on a
// database or an actuator, and never while holding the controller.
type Driver struct {
	Ctrl     *autoshift.Controller
	Actuator actuator.Actuator
	// Save stores the runbook's state durably; nil: nothing is durable.
	Save func(ctx context.Context, st runbook.State) error
	// Audit receives every audit event; nil: none.
	Audit func(autoshift.AuditEvent)
	// Now stamps the answers of concurrent actions (default time.Now).
	Now func() time.Time
	// Inline applies the actions in the tick's goroutine, one after another,
	// answered as of the tick (sim mode, tests: exact and deterministic).
	// Otherwise each runs in its own goroutine, so a hanging control plane
	// never holds up the data plane or the next tick.
	Inline bool
	// ActionTimeout bounds one concurrent action (default 30s).
	ActionTimeout time.Duration
	Log           *slog.Logger

	inflight sync.WaitGroup
	saveMu   sync.Mutex // orders the savers: an older state never overwrites a newer one
	saved    uint64     // the version last saved
}

// Tick steps the controller at now and carries out its Ready. It returns the
// assessment.
func (d *Driver) Tick(ctx context.Context, now time.Time) detect.Assessment {
	rd := d.Ctrl.Tick(now)
	d.audit(rd.Audit)
	if len(rd.Actions) == 0 {
		return rd.Assessment
	}
	if err := d.save(ctx, rd.State, rd.Version); err != nil {
		d.log().Warn("runbook state not saved; its actions wait", "err", err)
		for _, act := range rd.Actions {
			d.audit(d.Ctrl.Ack(now, rd.Epoch, act, fmt.Errorf("not started: save runbook state: %w", err)))
		}
		return rd.Assessment
	}
	epoch := rd.Epoch // the goroutines take it, not rd: rd would move to the heap every tick
	for _, act := range rd.Actions {
		if d.Inline {
			err := d.Actuator.Apply(ctx, act)
			d.audit(d.Ctrl.Ack(now, epoch, act, err))
			continue
		}
		d.inflight.Add(1)
		go func(act actuator.Action) {
			defer d.inflight.Done()
			timeout := d.ActionTimeout
			if timeout <= 0 {
				timeout = 30 * time.Second
			}
			actx, cancel := context.WithTimeout(ctx, timeout)
			err := d.Actuator.Apply(actx, act)
			cancel()
			// Acknowledged the moment it returns, not at the next tick, and
			// saved at once: the narrower the window between an action's
			// effect and its record, the fewer re-runs after a crash.
			d.audit(d.Ctrl.Ack(d.now(), epoch, act, err))
			if serr := d.SaveState(ctx); serr != nil {
				d.log().Warn("runbook state not saved after an action", "action", act.String(), "err", serr)
			}
		}(act)
	}
	return rd.Assessment
}

// Abandon ends the runbook's episode (its shift ended outside it) and
// records why.
func (d *Driver) Abandon(now time.Time, why string) { d.audit(d.Ctrl.Abandon(now, why)) }

// SaveState saves the runbook's current state unless it is already saved.
func (d *Driver) SaveState(ctx context.Context) error {
	st, v := d.Ctrl.RunbookState()
	return d.save(ctx, st, v)
}

// Wait blocks until every concurrent action has returned.
func (d *Driver) Wait() { d.inflight.Wait() }

func (d *Driver) save(ctx context.Context, st runbook.State, version uint64) error {
	if d.Save == nil {
		return nil
	}
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	if version <= d.saved {
		return nil // this state, or a newer one, is already durable
	}
	if err := d.Save(ctx, st); err != nil {
		return err
	}
	d.saved = version
	return nil
}

func (d *Driver) audit(evs []autoshift.AuditEvent) {
	if d.Audit == nil {
		return
	}
	for _, e := range evs {
		d.Audit(e)
	}
}

func (d *Driver) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Driver) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.Default()
}
