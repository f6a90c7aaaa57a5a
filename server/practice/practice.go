// Package practice schedules practice runs in the manner of ARC zonal
// autoshift: now and then, shift a resource's traffic away from one zone
// (origin practice) for a while, to prove the resource still serves its
// customers without that zone, and judge the run by its outcome alarms.
//
// The package is pure logic, like detect: the Scheduler is told the time and
// the alarms' states and returns a Decision; the caller starts and ends the
// shifts, records the outcomes and persists State. It never reads a clock.
//
// The protocol, for a caller ticking every few seconds:
//
//	switch d := s.Step(now, alarmState, canStart); d.Kind {
//	case practice.Start:
//		// start a practice shift away from d.Zone, then s.Started(now, d.Zone, id);
//		// if it cannot be started, record that and call s.Ended(now).
//	case practice.Prevented:
//		// record d.Reason; it comes once per due slot, not every tick.
//	case practice.End:
//		// end shift d.ShiftID (if any), then s.Ended(now) and record d.Outcome.
//		// End repeats on every Step until Ended, so a failed end is retried.
//	}
package practice

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/grayzone/grayzone/engine/alarm"
	"github.com/grayzone/grayzone/internal/duration"
)

// Config configures practice runs for one resource.
type Config struct {
	// Interval is the time between the starts of two runs.
	Interval time.Duration
	// Duration is how long a run keeps its zone shifted.
	Duration time.Duration
	// OutcomeAlarms judge a run: FAILED as soon as one is in ALARM.
	OutcomeAlarms []string
	// BlockingAlarms prevent a run from starting and interrupt a running one.
	BlockingAlarms []string
	// BlockedWindows and BlockedDates are times (UTC) in which no run may be
	// in progress.
	BlockedWindows []Window
	BlockedDates   []Date
}

// Validate reports the first problem with c that would make the scheduler
// misbehave; the config package gives users the same checks with file lines.
func (c Config) Validate() error {
	switch {
	case c.Interval <= 0:
		return fmt.Errorf("practice: interval %v must be positive", c.Interval)
	case c.Duration <= 0:
		return fmt.Errorf("practice: duration %v must be positive", c.Duration)
	case c.Duration >= c.Interval:
		return fmt.Errorf("practice: duration %v must be shorter than interval %v", c.Duration, c.Interval)
	}
	return nil
}

// Outcome is how a practice run ended, spelled as ARC spells it.
type Outcome string

const (
	Succeeded           Outcome = "SUCCEEDED"
	Failed              Outcome = "FAILED"
	Interrupted         Outcome = "INTERRUPTED"
	CapacityCheckFailed Outcome = "CAPACITY_CHECK_FAILED"
)

// Kind says what a Decision asks of the caller.
type Kind string

const (
	None      Kind = ""          // nothing to do
	Start     Kind = "start"     // start a practice shift away from Zone
	Prevented Kind = "prevented" // a run is due but cannot start: record Reason
	End       Kind = "end"       // end the run (shift ShiftID) with Outcome
)

// Decision is what Step concludes.
type Decision struct {
	Kind    Kind
	Zone    string
	ShiftID string  // End: the shift to end; empty if it never started
	Outcome Outcome // End only
	Reason  string  // Prevented and End: one line, for the record
}

// Run is the practice run in progress.
type Run struct {
	Zone    string    `json:"zone"`
	ShiftID string    `json:"shift_id,omitempty"`
	Decided time.Time `json:"decided"`           // when Step returned Start
	Started time.Time `json:"started,omitzero"`  // when the shift began; zero until Started
	Outcome Outcome   `json:"outcome,omitempty"` // set once End is decided
	Reason  string    `json:"reason,omitempty"`
}

// State is everything the scheduler remembers; the service persists it
// (it marshals to JSON) and hands it back to Restore after a restart.
type State struct {
	// Last is when the last run (or capacity-failed attempt) started; the
	// next is due Interval later. Zero: none yet, due at once.
	Last time.Time `json:"last,omitzero"`
	// LastZone is the zone of that run; the next run takes the zone after it.
	// A zone, not an index, so that editing the zone list keeps the rotation.
	LastZone string `json:"last_zone,omitempty"`
	// LastEnded is when the caller last reported a run over.
	LastEnded time.Time `json:"last_ended,omitzero"`
	// PreventedAt is when a Prevented decision was last returned, so that a
	// due slot yields one record, not one a tick.
	PreventedAt time.Time `json:"prevented_at,omitzero"`
	// Run is the run in progress, if any.
	Run *Run `json:"run,omitempty"`
}

// Scheduler decides when practice runs start and how they end. Not safe for
// concurrent use: one loop owns it.
type Scheduler struct {
	cfg   Config
	zones []string
	st    State
}

// New returns a scheduler for a resource over zones (rotated in this
// order). last is when the last run started, zero if none: a resource with
// no run yet is due at once.
func New(cfg Config, zones []string, last time.Time) *Scheduler {
	return &Scheduler{cfg: cfg, zones: slices.Clone(zones), st: State{Last: last}}
}

// State returns a copy of the scheduler's state, to persist.
func (s *Scheduler) State() State {
	st := s.st
	if st.Run != nil {
		r := *st.Run
		st.Run = &r
	}
	return st
}

// Restore replaces the scheduler's state with one State returned earlier.
func (s *Scheduler) Restore(st State) error {
	if st.Run != nil {
		if st.Run.Zone == "" {
			return errors.New("practice: restored run has no zone")
		}
		r := *st.Run
		st.Run = &r
	}
	s.st = st
	return nil
}

// Current returns the run in progress, for display and, after a restart, to
// reconcile with the shifts that actually exist: a run whose shift is gone
// should be reported with Ended.
func (s *Scheduler) Current() (Run, bool) {
	if s.st.Run == nil {
		return Run{}, false
	}
	return *s.st.Run, true
}

// Due returns when the next run is due (zero: now).
func (s *Scheduler) Due() time.Time {
	if s.st.Last.IsZero() {
		return time.Time{}
	}
	return s.st.Last.Add(s.cfg.Interval)
}

// NextZone is the zone the next run will shift away from.
func (s *Scheduler) NextZone() string {
	if len(s.zones) == 0 {
		return ""
	}
	i := slices.Index(s.zones, s.st.LastZone)
	return s.zones[(i+1)%len(s.zones)] // i == -1 (none, or a removed zone): the first
}

// Started tells the scheduler the caller's practice shift began. It records
// what the caller did even without a matching Start (say, after a restart
// lost the state), so the scheduler follows reality. An empty zone means
// the pending run's (with none pending, the call is ignored).
func (s *Scheduler) Started(now time.Time, zone, shiftID string) {
	r := s.st.Run
	if zone == "" {
		if r == nil {
			return
		}
		zone = r.Zone
	}
	if r == nil || r.Zone != zone {
		r = &Run{Zone: zone, Decided: now}
		s.st.Run = r
		s.st.Last, s.st.LastZone = now, zone
	}
	r.ShiftID, r.Started = shiftID, now
}

// Ended tells the scheduler the run is over (its shift ended, failed to
// start, or was ended by someone else); the next run is due Interval after
// this one's start.
func (s *Scheduler) Ended(now time.Time) {
	s.st.Run = nil
	s.st.LastEnded = now
}

// Step returns what to do at now. alarms gives an alarm's state by name
// (nil: every alarm OK); canStart is the caller's check that shifting away
// from zone is safe now (capacity, other shifts; nil: always).
//
// A run starts when it is due (now >= last start + Interval), no blocking or
// outcome alarm is in ALARM (a run that starts failed or interrupted proves
// nothing), and the whole run [now, now+Duration) stays clear of blocked
// windows and dates: checking only the start would begin runs that a window
// is bound to interrupt. Only ALARM blocks; INSUFFICIENT_DATA does not, as
// a new service has no data for a while.
func (s *Scheduler) Step(now time.Time, alarms func(name string) alarm.State, canStart func(zone string) error) Decision {
	if alarms == nil {
		alarms = func(string) alarm.State { return alarm.OK }
	}
	if s.st.Run != nil {
		return s.stepRun(now, alarms)
	}
	if len(s.zones) == 0 || now.Before(s.Due()) {
		return Decision{}
	}
	zone := s.NextZone()
	if reason := s.startBlocked(now, alarms); reason != "" {
		// One record per slot: the first refusal in a slot, then again only
		// after another Interval (a slot is Interval long).
		p := s.st.PreventedAt
		if p.IsZero() || p.Before(s.Due()) || !now.Before(p.Add(s.cfg.Interval)) {
			s.st.PreventedAt = now
			return Decision{Kind: Prevented, Zone: zone, Reason: reason}
		}
		return Decision{}
	}
	if canStart != nil {
		if err := canStart(zone); err != nil {
			// Recorded as a run that took its slot and its turn in the
			// rotation, as ARC does, so one zone that can never be shifted
			// does not keep the others from being practised.
			s.st.Last, s.st.LastZone = now, zone
			return Decision{Kind: End, Zone: zone, Outcome: CapacityCheckFailed, Reason: oneLine(err.Error())}
		}
	}
	s.st.Last, s.st.LastZone = now, zone
	s.st.Run = &Run{Zone: zone, Decided: now}
	return Decision{Kind: Start, Zone: zone}
}

// stepRun judges the run in progress. Once an outcome is decided it is kept
// and End returned on every Step until the caller calls Ended, so an end
// that failed (or a restart in between) is retried with the same outcome.
func (s *Scheduler) stepRun(now time.Time, alarms func(string) alarm.State) Decision {
	r := s.st.Run
	if r.Outcome == "" {
		r.Outcome, r.Reason = s.judge(now, alarms, r)
	}
	if r.Outcome == "" {
		return Decision{}
	}
	return Decision{Kind: End, Zone: r.Zone, ShiftID: r.ShiftID, Outcome: r.Outcome, Reason: r.Reason}
}

// judge returns the run's outcome at now, or "" while it goes on. FAILED
// wins over everything: a customer-facing alarm during a practice is the
// finding, whatever else happened. A run that completed its duration has
// SUCCEEDED even if a blocking alarm or window arrives at that same tick.
func (s *Scheduler) judge(now time.Time, alarms func(string) alarm.State, r *Run) (Outcome, string) {
	if r.Started.IsZero() {
		// Start was decided but the caller never reported the shift: give up
		// after Duration rather than hold the schedule forever.
		if !now.Before(r.Decided.Add(s.cfg.Duration)) {
			return Interrupted, "the practice shift was never reported started"
		}
		return "", ""
	}
	if a := inAlarm(s.cfg.OutcomeAlarms, alarms); a != "" {
		return Failed, fmt.Sprintf("outcome alarm %s went into ALARM after %s", a, duration.Format(now.Sub(r.Started)))
	}
	if !now.Before(r.Started.Add(s.cfg.Duration)) {
		return Succeeded, fmt.Sprintf("traffic stayed away from %s for %s with no outcome alarm in ALARM", r.Zone, duration.Format(s.cfg.Duration))
	}
	if a := inAlarm(s.cfg.BlockingAlarms, alarms); a != "" {
		return Interrupted, fmt.Sprintf("blocking alarm %s went into ALARM", a)
	}
	if b := s.blockedAt(now); b != "" {
		return Interrupted, "entered " + b
	}
	return "", ""
}

// startBlocked says why a run may not start at now, or "".
func (s *Scheduler) startBlocked(now time.Time, alarms func(string) alarm.State) string {
	if b := s.blockedAt(now); b != "" {
		return "in " + b
	}
	end := now.Add(s.cfg.Duration)
	if at, b := s.firstBlocked(now, end); b != "" {
		return fmt.Sprintf("a %s run would reach %s at %s", duration.Format(s.cfg.Duration), b, at.UTC().Format("Mon 2006-01-02 15:04 UTC"))
	}
	if a := inAlarm(s.cfg.BlockingAlarms, alarms); a != "" {
		return fmt.Sprintf("blocking alarm %s is in ALARM", a)
	}
	if a := inAlarm(s.cfg.OutcomeAlarms, alarms); a != "" {
		return fmt.Sprintf("outcome alarm %s is already in ALARM", a)
	}
	return ""
}

// blockedAt names the blocked window or date now falls in, or "".
func (s *Scheduler) blockedAt(now time.Time) string {
	for _, d := range s.cfg.BlockedDates {
		if d.Contains(now) {
			return "blocked date " + d.String()
		}
	}
	for _, w := range s.cfg.BlockedWindows {
		if w.Contains(now) {
			return "blocked window " + w.String()
		}
	}
	return ""
}

// firstBlocked returns the earliest blocked instant in [from, to) and what
// blocks it, or "" if the interval is clear.
func (s *Scheduler) firstBlocked(from, to time.Time) (time.Time, string) {
	var at time.Time
	var what string
	consider := func(t time.Time, w string) {
		if t.Before(to) && (what == "" || t.Before(at)) {
			at, what = t, w
		}
	}
	for _, w := range s.cfg.BlockedWindows {
		consider(w.next(from), "blocked window "+w.String())
	}
	for _, d := range s.cfg.BlockedDates {
		switch st := d.start(); {
		case d.Contains(from):
			consider(from, "blocked date "+d.String())
		case st.After(from):
			consider(st, "blocked date "+d.String())
		}
	}
	return at, what
}

func inAlarm(names []string, alarms func(string) alarm.State) string {
	for _, n := range names {
		if alarms(n) == alarm.Alarm {
			return n
		}
	}
	return ""
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
