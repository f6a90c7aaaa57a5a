package practice

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/alarm"
)

var zones = []string{"az1", "az2", "az3"}

func baseConfig() Config {
	return Config{
		Interval:       168 * time.Hour,
		Duration:       30 * time.Minute,
		OutcomeAlarms:  []string{"regional-impact"},
		BlockingAlarms: []string{"az2-isolated-impact"},
	}
}

// tick is one Step of a script: the alarms in ALARM at that time, what
// canStart says, the decision expected, and what the caller then does.
type tick struct {
	at     time.Duration // from monday
	alarms []string      // in ALARM; everything else OK
	capErr string
	want   Decision // Reason compared by substring
	then   string   // "started" (shift id "s-<zone>") or "ended"
}

func run(t *testing.T, s *Scheduler, ticks []tick) {
	t.Helper()
	for i, tk := range ticks {
		now := at(tk.at)
		firing := tk.alarms
		alarms := func(name string) alarm.State {
			for _, a := range firing {
				if a == name {
					return alarm.Alarm
				}
			}
			return alarm.OK
		}
		canStart := func(string) error {
			if tk.capErr != "" {
				return errors.New(tk.capErr)
			}
			return nil
		}
		got := s.Step(now, alarms, canStart)
		w := tk.want
		if got.Kind != w.Kind || got.Zone != w.Zone || got.Outcome != w.Outcome || got.ShiftID != w.ShiftID ||
			!strings.Contains(got.Reason, w.Reason) {
			t.Fatalf("tick %d at +%v: got %+v, want %+v", i, tk.at, got, w)
		}
		switch tk.then {
		case "started":
			zone := got.Zone
			if r, ok := s.Current(); ok {
				zone = r.Zone // a shift that took a while to start
			}
			s.Started(now, zone, "s-"+zone)
		case "ended":
			s.Ended(now)
		case "":
		default:
			t.Fatalf("tick %d: unknown action %q", i, tk.then)
		}
	}
}

const (
	m = time.Minute
	h = time.Hour
)

func TestScheduler(t *testing.T) {
	tests := []struct {
		name  string
		cfg   func(*Config)
		last  time.Duration // last run start, from monday; 0 = none
		ticks []tick
	}{
		{
			name: "succeeded, no double start, rotation",
			ticks: []tick{
				{at: 0, want: Decision{Kind: Start, Zone: "az1"}, then: "started"},
				{at: 1 * m, want: Decision{}},
				{at: 29*m + 59*time.Second, want: Decision{}},
				{at: 30 * m, want: Decision{Kind: End, Zone: "az1", ShiftID: "s-az1", Outcome: Succeeded,
					Reason: "traffic stayed away from az1 for 30m with no outcome alarm in ALARM"}, then: "ended"},
				{at: 31 * m, want: Decision{}},
				{at: 167 * h, want: Decision{}},
				{at: 168 * h, want: Decision{Kind: Start, Zone: "az2"}, then: "started"},
				{at: 168*h + 30*m, want: Decision{Kind: End, Zone: "az2", ShiftID: "s-az2", Outcome: Succeeded}, then: "ended"},
				{at: 336 * h, want: Decision{Kind: Start, Zone: "az3"}, then: "started"},
				{at: 336*h + 30*m, want: Decision{Kind: End, Zone: "az3", ShiftID: "s-az3", Outcome: Succeeded}, then: "ended"},
				{at: 504 * h, want: Decision{Kind: Start, Zone: "az1"}},
			},
		},
		{
			name: "failed on an outcome alarm, End repeats until Ended",
			ticks: []tick{
				{at: 0, want: Decision{Kind: Start, Zone: "az1"}, then: "started"},
				{at: 5 * m, alarms: []string{"regional-impact"}, want: Decision{Kind: End, Zone: "az1", ShiftID: "s-az1", Outcome: Failed,
					Reason: "outcome alarm regional-impact went into ALARM after 5m"}},
				// The alarm cleared and the duration passed: still FAILED.
				{at: 40 * m, want: Decision{Kind: End, Zone: "az1", ShiftID: "s-az1", Outcome: Failed}, then: "ended"},
				{at: 41 * m, want: Decision{}},
			},
		},
		{
			name: "failed wins over a blocking alarm and over the end of the run",
			ticks: []tick{
				{at: 0, want: Decision{Kind: Start, Zone: "az1"}, then: "started"},
				{at: 30 * m, alarms: []string{"az2-isolated-impact", "regional-impact"}, want: Decision{Kind: End, Zone: "az1", ShiftID: "s-az1", Outcome: Failed}},
			},
		},
		{
			name: "succeeded wins over a blocking alarm at the last tick",
			ticks: []tick{
				{at: 0, want: Decision{Kind: Start, Zone: "az1"}, then: "started"},
				{at: 30 * m, alarms: []string{"az2-isolated-impact"}, want: Decision{Kind: End, Zone: "az1", ShiftID: "s-az1", Outcome: Succeeded}},
			},
		},
		{
			name: "interrupted by a blocking alarm",
			ticks: []tick{
				{at: 0, want: Decision{Kind: Start, Zone: "az1"}, then: "started"},
				{at: 10 * m, alarms: []string{"az2-isolated-impact"}, want: Decision{Kind: End, Zone: "az1", ShiftID: "s-az1", Outcome: Interrupted,
					Reason: "blocking alarm az2-isolated-impact went into ALARM"}, then: "ended"},
				// The slot is used: the next run is a week after this one's start.
				{at: 11 * m, want: Decision{}},
				{at: 168 * h, want: Decision{Kind: Start, Zone: "az2"}},
			},
		},
		{
			name: "interrupted on entering a blocked window",
			cfg:  func(c *Config) { c.BlockedWindows = []Window{{Start: 10 * h, End: 11 * h}} },
			ticks: []tick{
				// [9:30, 10:00) ends exactly at the window's start: allowed.
				{at: 9*h + 30*m, want: Decision{Kind: Start, Zone: "az1"}},
				// The shift took a minute to start, so the run reaches the window.
				{at: 9*h + 31*m, want: Decision{}, then: "started"},
				{at: 10*h - time.Nanosecond, want: Decision{}},
				{at: 10 * h, want: Decision{Kind: End, Zone: "az1", ShiftID: "s-az1", Outcome: Interrupted,
					Reason: "entered blocked window Mon:10:00-Mon:11:00"}, then: "ended"},
			},
		},
		{
			name: "interrupted on entering a blocked date",
			cfg:  func(c *Config) { c.BlockedDates = []Date{{2026, time.January, 6}} },
			ticks: []tick{
				{at: 23*h + 30*m, want: Decision{Kind: Start, Zone: "az1"}},
				{at: 23*h + 31*m, want: Decision{}, then: "started"},
				{at: 24 * h, want: Decision{Kind: End, Zone: "az1", ShiftID: "s-az1", Outcome: Interrupted,
					Reason: "entered blocked date 2026-01-06"}},
			},
		},
		{
			name: "capacity check failed: recorded, not started, slot and turn used",
			ticks: []tick{
				{at: 0, capErr: "shifting away from az1 leaves 1 instance,\n min_capacity is 2", want: Decision{Kind: End, Zone: "az1", Outcome: CapacityCheckFailed,
					Reason: "shifting away from az1 leaves 1 instance, min_capacity is 2"}, then: "ended"},
				{at: 1 * m, want: Decision{}},
				{at: 168 * h, want: Decision{Kind: Start, Zone: "az2"}},
			},
		},
		{
			name: "prevented by a blocking alarm once per slot, starts when it clears",
			ticks: []tick{
				{at: 0, alarms: []string{"az2-isolated-impact"}, want: Decision{Kind: Prevented, Zone: "az1",
					Reason: "blocking alarm az2-isolated-impact is in ALARM"}},
				{at: 1 * m, alarms: []string{"az2-isolated-impact"}, want: Decision{}},
				{at: 5 * h, alarms: []string{"regional-impact"}, want: Decision{}}, // other reason, same slot
				{at: 6 * h, want: Decision{Kind: Start, Zone: "az1"}, then: "started"},
				{at: 6*h + 30*m, want: Decision{Kind: End, Zone: "az1", ShiftID: "s-az1", Outcome: Succeeded}, then: "ended"},
				// A new slot: a refusal is recorded again.
				{at: 174 * h, alarms: []string{"az2-isolated-impact"}, want: Decision{Kind: Prevented, Zone: "az2"}},
				{at: 175 * h, alarms: []string{"az2-isolated-impact"}, want: Decision{}},
			},
		},
		{
			name: "prevented again after a whole interval of refusals",
			ticks: []tick{
				{at: 0, alarms: []string{"az2-isolated-impact"}, want: Decision{Kind: Prevented, Zone: "az1"}},
				{at: 168*h - time.Second, alarms: []string{"az2-isolated-impact"}, want: Decision{}},
				{at: 168 * h, alarms: []string{"az2-isolated-impact"}, want: Decision{Kind: Prevented, Zone: "az1"}},
				{at: 169 * h, alarms: []string{"az2-isolated-impact"}, want: Decision{}},
			},
		},
		{
			name: "prevented while an outcome alarm is already in ALARM",
			ticks: []tick{
				{at: 0, alarms: []string{"regional-impact"}, want: Decision{Kind: Prevented, Zone: "az1",
					Reason: "outcome alarm regional-impact is already in ALARM"}},
				{at: 1 * m, want: Decision{Kind: Start, Zone: "az1"}},
			},
		},
		{
			name: "blocked window: prevented inside, starts at its end (exclusive)",
			cfg:  func(c *Config) { c.BlockedWindows = []Window{{Start: 9 * h, End: 17 * h}} },
			ticks: []tick{
				{at: 9 * h, want: Decision{Kind: Prevented, Zone: "az1", Reason: "in blocked window Mon:09:00-Mon:17:00"}},
				{at: 12 * h, want: Decision{}},
				{at: 17*h - time.Nanosecond, want: Decision{}},
				{at: 17 * h, want: Decision{Kind: Start, Zone: "az1"}},
			},
		},
		{
			name: "blocked window: a run that would reach it does not start",
			cfg:  func(c *Config) { c.BlockedWindows = []Window{{Start: 9 * h, End: 17 * h}} },
			ticks: []tick{
				{at: 8*h + 31*m, want: Decision{Kind: Prevented, Zone: "az1",
					Reason: "a 30m run would reach blocked window Mon:09:00-Mon:17:00 at Mon 2026-01-05 09:00 UTC"}},
				{at: 17 * h, want: Decision{Kind: Start, Zone: "az1"}},
			},
		},
		{
			name: "blocked window: a run ending exactly at its start may start",
			cfg:  func(c *Config) { c.BlockedWindows = []Window{{Start: 9 * h, End: 17 * h}} },
			ticks: []tick{
				{at: 8*h + 30*m, want: Decision{Kind: Start, Zone: "az1"}, then: "started"},
				{at: 9 * h, want: Decision{Kind: End, Zone: "az1", ShiftID: "s-az1", Outcome: Succeeded}},
			},
		},
		{
			name: "week-wrapping window",
			cfg:  func(c *Config) { c.BlockedWindows = []Window{mustWindow(t, "Fri:22:00-Mon:06:00")} },
			last: -168*h - 7*day/2, // due since the Thursday noon before
			ticks: []tick{
				{at: -3*day + 23*h, want: Decision{Kind: Prevented, Zone: "az1", Reason: "in blocked window Fri:22:00-Mon:06:00"}}, // Fri 23:00
				{at: -1*day + 12*h, want: Decision{}}, // Sunday
				{at: 5*h + 59*m, want: Decision{}},    // Monday, still inside
				{at: 6 * h, want: Decision{Kind: Start, Zone: "az1"}},
			},
		},
		{
			name: "a long run may not jump over a short window",
			cfg: func(c *Config) {
				c.Duration = 72 * h
				c.BlockedWindows = []Window{{Start: 2*day + 12*h, End: 2*day + 13*h}} // Wed 12:00-13:00
			},
			ticks: []tick{
				{at: 0, want: Decision{Kind: Prevented, Zone: "az1", Reason: "a 72h run would reach blocked window Wed:12:00-Wed:13:00"}},
				{at: 2*day + 13*h, want: Decision{Kind: Start, Zone: "az1"}},
			},
		},
		{
			name: "blocked date: the whole UTC day",
			cfg:  func(c *Config) { c.BlockedDates = []Date{{2026, time.January, 6}} }, // Tuesday
			ticks: []tick{
				{at: 23*h + 31*m, want: Decision{Kind: Prevented, Zone: "az1", Reason: "a 30m run would reach blocked date 2026-01-06 at Tue 2026-01-06 00:00 UTC"}},
				{at: 24 * h, want: Decision{}},
				{at: 48*h - time.Nanosecond, want: Decision{}},
				{at: 48 * h, want: Decision{Kind: Start, Zone: "az1"}},
			},
		},
		{
			name: "blocked date: prevented on the day itself",
			cfg:  func(c *Config) { c.BlockedDates = []Date{{2026, time.January, 5}} },
			ticks: []tick{
				{at: 0, want: Decision{Kind: Prevented, Zone: "az1", Reason: "in blocked date 2026-01-05"}},
				{at: 24 * h, want: Decision{Kind: Start, Zone: "az1"}},
			},
		},
		{
			name: "not due before last + interval",
			last: -1 * h,
			ticks: []tick{
				{at: 0, want: Decision{}},
				{at: 167*h - time.Nanosecond, want: Decision{}},
				{at: 167 * h, want: Decision{Kind: Start, Zone: "az1"}},
			},
		},
		{
			name: "a shift never reported started is given up after the duration",
			ticks: []tick{
				{at: 0, want: Decision{Kind: Start, Zone: "az1"}},
				{at: 29 * m, alarms: []string{"regional-impact"}, want: Decision{}},
				{at: 30 * m, want: Decision{Kind: End, Zone: "az1", Outcome: Interrupted, Reason: "never reported started"}, then: "ended"},
				{at: 31 * m, want: Decision{}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			var last time.Time
			if tt.last != 0 {
				last = at(tt.last)
			}
			run(t, New(cfg, zones, last), tt.ticks)
		})
	}
}

// TestRestore persists the state as JSON mid-run, as the service does, and
// continues with a fresh scheduler.
func TestRestore(t *testing.T) {
	restart := func(t *testing.T, s *Scheduler, zones []string) *Scheduler {
		t.Helper()
		b, err := json.Marshal(s.State())
		if err != nil {
			t.Fatal(err)
		}
		var st State
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		n := New(baseConfig(), zones, time.Time{})
		if err := n.Restore(st); err != nil {
			t.Fatal(err)
		}
		return n
	}
	t.Run("running run continues", func(t *testing.T) {
		s := New(baseConfig(), zones, time.Time{})
		run(t, s, []tick{{at: 0, want: Decision{Kind: Start, Zone: "az1"}, then: "started"}})
		s = restart(t, s, zones)
		if r, ok := s.Current(); !ok || r.Zone != "az1" || r.ShiftID != "s-az1" || !r.Started.Equal(at(0)) {
			t.Fatalf("Current() = %+v, %v", r, ok)
		}
		run(t, s, []tick{
			{at: 10 * m, want: Decision{}},
			{at: 30 * m, want: Decision{Kind: End, Zone: "az1", ShiftID: "s-az1", Outcome: Succeeded}, then: "ended"},
			{at: 31 * m, want: Decision{}},
		})
		s = restart(t, s, zones)
		run(t, s, []tick{{at: 168 * h, want: Decision{Kind: Start, Zone: "az2"}}})
	})
	t.Run("decided outcome survives", func(t *testing.T) {
		s := New(baseConfig(), zones, time.Time{})
		run(t, s, []tick{
			{at: 0, want: Decision{Kind: Start, Zone: "az1"}, then: "started"},
			{at: 5 * m, alarms: []string{"regional-impact"}, want: Decision{Kind: End, Zone: "az1", ShiftID: "s-az1", Outcome: Failed}},
		})
		s = restart(t, s, zones)
		run(t, s, []tick{{at: 6 * m, want: Decision{Kind: End, Zone: "az1", ShiftID: "s-az1", Outcome: Failed}, then: "ended"}})
	})
	t.Run("prevented slot survives", func(t *testing.T) {
		s := New(baseConfig(), zones, time.Time{})
		run(t, s, []tick{{at: 0, alarms: []string{"az2-isolated-impact"}, want: Decision{Kind: Prevented, Zone: "az1"}}})
		s = restart(t, s, zones)
		run(t, s, []tick{{at: 1 * m, alarms: []string{"az2-isolated-impact"}, want: Decision{}}})
	})
	t.Run("rotation survives a changed zone list", func(t *testing.T) {
		s := New(baseConfig(), zones, time.Time{})
		run(t, s, []tick{
			{at: 0, want: Decision{Kind: Start, Zone: "az1"}, then: "started"},
			{at: 30 * m, want: Decision{Kind: End, Zone: "az1", ShiftID: "s-az1", Outcome: Succeeded}, then: "ended"},
		})
		s = restart(t, s, []string{"az0", "az1", "az3"})
		run(t, s, []tick{{at: 168 * h, want: Decision{Kind: Start, Zone: "az3"}}})
		// A last zone no longer configured: start again from the first.
		s = restart(t, s, []string{"az7", "az8"})
		if z := s.NextZone(); z != "az7" {
			t.Errorf("NextZone() = %q, want az7", z)
		}
	})
	t.Run("bad state", func(t *testing.T) {
		if err := New(baseConfig(), zones, time.Time{}).Restore(State{Run: &Run{}}); err == nil {
			t.Error("Restore accepted a run without a zone")
		}
	})
}

func TestStartedWithoutStart(t *testing.T) {
	s := New(baseConfig(), zones, time.Time{})
	s.Started(at(0), "az2", "x")
	run(t, s, []tick{
		{at: 30 * m, want: Decision{Kind: End, Zone: "az2", ShiftID: "x", Outcome: Succeeded}, then: "ended"},
		{at: 168 * h, want: Decision{Kind: Start, Zone: "az3"}},
	})
}

// TestNoPanics feeds degenerate input: no zones, zero config, nil funcs.
func TestNoPanics(t *testing.T) {
	if d := New(Config{}, nil, time.Time{}).Step(at(0), nil, nil); d.Kind != None {
		t.Errorf("no zones: %+v", d)
	}
	s := New(Config{}, zones, time.Time{})
	if d := s.Step(at(0), nil, nil); d.Kind != Start {
		t.Errorf("zero config: %+v", d)
	}
	s.Ended(at(0))
	s.Step(at(0), nil, nil)
	s.Started(at(0), "", "")
	s.Step(at(0), nil, nil)
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{baseConfig(), ""},
		{Config{Duration: m}, "practice: interval 0s must be positive"},
		{Config{Interval: h}, "practice: duration 0s must be positive"},
		{Config{Interval: h, Duration: h}, "practice: duration 1h0m0s must be shorter than interval 1h0m0s"},
	} {
		err := tt.cfg.Validate()
		if (err == nil) != (tt.want == "") || (err != nil && err.Error() != tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}
