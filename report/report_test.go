package report

import (
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/runbook"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func sec(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func TestBuildPairsEvents(t *testing.T) {
	r := Build(Run{Name: "t", Mode: "replay", Start: t0, Planned: 300 * time.Second, Elapsed: 300 * time.Second,
		Faults: []Fault{{Kind: "blackhole", Target: "zone a", Start: 60}},
		Events: []runbook.Event{{At: sec(70), Kind: runbook.ShiftStarted, Zone: "a"}, {At: sec(100), Kind: runbook.Failed, Action: "exclude_zone", Zone: "a"},
			{At: sec(101), Kind: runbook.Excluded, Zone: "a"}, {At: sec(240), Kind: runbook.Included, Zone: "a"}, {At: sec(250), Kind: runbook.ShiftEnded, Zone: "a"}}})
	if r.Interrupted || len(r.Faults) != 1 || r.Scenario != "t" {
		t.Errorf("report = %+v", r)
	}
	if len(r.Shifts) != 1 || r.Shifts[0].End == nil || *r.Shifts[0].End != 250 {
		t.Errorf("shifts = %+v", r.Shifts)
	}
	if len(r.ControlPlane) != 1 || r.ControlPlane[0].Failures != 1 || r.ControlPlane[0].Restored == nil || *r.ControlPlane[0].Restored != 240 {
		t.Errorf("control plane = %+v", r.ControlPlane)
	}
}

type unmet []string

func (u unmet) Unmet(*Report) []string { return u }

func TestCheckRecordsTheOutcome(t *testing.T) {
	r := &Report{}
	r.Check(unmet(nil))
	if !r.Expect.Met || r.Expect.Failures == nil {
		t.Errorf("nothing unmet: %+v (want met, failures [] not null)", r.Expect)
	}
	r.Check(unmet{"shift: a was never shifted away"})
	if r.Expect.Met || len(r.Expect.Failures) != 1 {
		t.Errorf("one unmet: %+v", r.Expect)
	}
}

func TestSummaryStartsWithTheOutcome(t *testing.T) {
	r := &Report{Scenario: "t", Mode: "sim", Duration: 360, Requests: Requests{Total: 7200, Failed: 8}}
	first := func() string {
		var b strings.Builder
		r.Summary(&b)
		lines := strings.Split(b.String(), "\n")
		if !strings.HasPrefix(lines[1], "t (sim mode") {
			t.Errorf("summary = %q, want the outcome, then the timeline", b.String())
		}
		return lines[0]
	}
	if got, want := first(), "mitigated: 8 of 7,200 customer requests failed (0.11 %)"; got != want {
		t.Errorf("outcome = %q, want %q", got, want)
	}
	r.Baseline = &Baseline{Requests: Requests{Total: 7200, Failed: 228}}
	if got, want := first(), "mitigated: 8 of 7,200 customer requests failed (0.11 %); unmitigated: 228 of 7,200 failed (3.17 %)"; got != want {
		t.Errorf("outcome with baseline = %q, want %q", got, want)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 7200: "7,200", 123456: "123,456", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// A zone that fails again after recovery ended its shift is a second shift
// episode in the report, marked as such in the JSON and in the summary, not
// folded into the first.
func TestRelapseIsASecondShiftEpisode(t *testing.T) {
	r := Build(Run{Name: "t", Mode: "sim", Start: t0, Planned: 600 * time.Second, Elapsed: 600 * time.Second,
		Events: []runbook.Event{
			{At: sec(70), Kind: runbook.ShiftStarted, Zone: "a"}, {At: sec(250), Kind: runbook.ShiftEnded, Zone: "a"},
			{At: sec(300), Kind: runbook.ShiftStarted, Zone: "b"}, {At: sec(320), Kind: runbook.ShiftEnded, Zone: "b"},
			{At: sec(345), Kind: runbook.ShiftStarted, Zone: "a", Relapse: true}, {At: sec(530), Kind: runbook.ShiftEnded, Zone: "a"}}})
	if len(r.Shifts) != 3 {
		t.Fatalf("shifts = %+v, want 3", r.Shifts)
	}
	first, other, second := r.Shifts[0], r.Shifts[1], r.Shifts[2]
	if first.Episode != 1 || first.Relapse || *first.End != 250 || other.Episode != 1 {
		t.Errorf("first shifts = %+v, %+v", first, other)
	}
	if second.AwayFrom != "a" || second.Episode != 2 || !second.Relapse || second.Start != 345 || *second.End != 530 {
		t.Errorf("the relapse = %+v, want a's episode 2 from 345 s to 530 s, marked relapse", second)
	}
	if p := r.Previous(2); p == nil || p.Start != 70 {
		t.Errorf("previous of the relapse = %+v, want a's first shift", p)
	}
	if r.Previous(1) != nil || r.Again(0) != "" {
		t.Error("a zone's first shift has no previous one")
	}
	var b strings.Builder
	r.Summary(&b)
	want := "shifted    away from a          at 345.0s, ended 530.0s; shift 2 of a, 95.0s after traffic went back (a relapse"
	if !strings.Contains(b.String(), want) {
		t.Errorf("summary does not tell the second episode:\n%s\nwant a line with %q", b.String(), want)
	}
	if strings.Count(b.String(), "shifted    away from a ") != 2 {
		t.Errorf("summary does not list both shifts of a:\n%s", b.String())
	}
}
