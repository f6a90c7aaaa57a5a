package alarm

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// t0 is 10:00 UTC; with one-minute periods, period k starts at 10:0k.
var t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

func cfg(n, m int, treat MissingData) Config {
	return Config{Name: "cpu-high", Period: time.Minute, EvaluationPeriods: n, DatapointsToAlarm: m,
		Comparison: GreaterThanThreshold, Threshold: 10, TreatMissing: treat}
}

// at is the start of period k.
func at(k int) time.Time { return t0.Add(time.Duration(k) * time.Minute) }

// run loads a pattern in the guide's notation ("0 - X - X", oldest first,
// 0 not breaching, X breaching, - missing) into the periods that end just
// before the evaluation, after first driving the alarm into prior state, and
// evaluates once.
func run(t *testing.T, c Config, prior State, pattern string) Evaluation {
	t.Helper()
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	// Long before the pattern, drive the alarm into prior with N real
	// datapoints; they fall out of memory once the pattern is written.
	switch prior {
	case Alarm, OK:
		v := 15.0
		if prior == OK {
			v = 5
		}
		for k := -100; k < -100+c.EvaluationPeriods; k++ {
			m.Put(at(k), v)
		}
		if got := m.Evaluate(at(-100 + c.EvaluationPeriods)).State; got != prior {
			t.Fatalf("setup: state %s, want %s", got, prior)
		}
	}
	fields := strings.Fields(pattern)
	for k, f := range fields {
		switch f {
		case "0":
			m.Put(at(k), 5)
		case "X":
			m.Put(at(k), 15)
		case "-":
		default:
			t.Fatalf("bad pattern %q", pattern)
		}
	}
	ev := m.Evaluate(at(len(fields)))
	if m.State() != ev.State {
		t.Errorf("State() = %s after Evaluate returned %s", m.State(), ev.State)
	}
	if strings.ContainsAny(ev.Reason, "\n\r") || ev.Reason == "" {
		t.Errorf("reason is not one line: %q", ev.Reason)
	}
	return ev
}

// The two tables of "How alarm state is evaluated when data is missing"
// (CloudWatch user guide), cell by cell. "retain" means the state before
// the evaluation is kept; it is checked from both OK and ALARM.
func TestGuideTables(t *testing.T) {
	const retain = State("retain")
	treatments := []MissingData{Missing, Ignore, Breaching, NotBreaching}
	tests := []struct {
		n, m    int
		pattern string
		want    [4]State // missing, ignore, breaching, notBreaching
	}{
		{3, 3, "0 - X - X", [4]State{OK, OK, OK, OK}},
		{3, 3, "0 - - - -", [4]State{OK, OK, OK, OK}},
		{3, 3, "- - - - -", [4]State{InsufficientData, retain, Alarm, OK}},
		{3, 3, "0 X X - X", [4]State{Alarm, Alarm, Alarm, Alarm}},
		{3, 3, "- - X - -", [4]State{Alarm, retain, Alarm, OK}},

		{3, 2, "0 - X - X", [4]State{Alarm, Alarm, Alarm, Alarm}},
		{3, 2, "0 0 X 0 X", [4]State{Alarm, Alarm, Alarm, Alarm}},
		{3, 2, "0 - X - -", [4]State{OK, OK, Alarm, OK}},
		{3, 2, "- - - - 0", [4]State{OK, OK, Alarm, OK}},
		{3, 2, "- - - X -", [4]State{Alarm, retain, Alarm, OK}},

		// The guide's prose on premature transitions, 3 of 3.
		{3, 3, "- - - - X", [4]State{OK, OK, Alarm, OK}},
		{3, 3, "- - - X -", [4]State{OK, OK, Alarm, OK}},
		{3, 3, "- - - X 0", [4]State{OK, OK, OK, OK}},
		{3, 3, "- - X - 0", [4]State{OK, OK, OK, OK}},
	}
	for _, tt := range tests {
		for k, treat := range treatments {
			for _, prior := range []State{OK, Alarm} {
				name := tt.pattern + "/" + string(treat) + "/from-" + string(prior)
				t.Run(name, func(t *testing.T) {
					ev := run(t, cfg(tt.n, tt.m, treat), prior, tt.pattern)
					want := tt.want[k]
					if want == retain {
						want = prior
					}
					if ev.State != want {
						t.Errorf("%d of %d %q treat=%s from %s: state %s, want %s (%s)", tt.m, tt.n, tt.pattern, treat, prior, ev.State, want, ev.Reason)
					}
					if ev.Previous != prior {
						t.Errorf("Previous = %s, want %s", ev.Previous, prior)
					}
				})
			}
		}
	}
}

func TestRetainFromInsufficientData(t *testing.T) {
	ev := run(t, cfg(3, 3, Ignore), InsufficientData, "- - - - -")
	if ev.State != InsufficientData {
		t.Errorf("state %s, want INSUFFICIENT_DATA kept", ev.State)
	}
	if want := "Missing data ignored: no datapoints were received for 5 periods; state stays INSUFFICIENT_DATA"; ev.Reason != want {
		t.Errorf("reason\n got %q\nwant %q", ev.Reason, want)
	}
}

func TestCounts(t *testing.T) {
	tests := []struct {
		n, m                       int
		treat                      MissingData
		pattern                    string
		breaching, present, filled int
	}{
		{3, 3, Breaching, "0 - X - -", 2, 2, 1},
		{3, 3, NotBreaching, "0 - X - -", 1, 2, 1},
		{3, 3, Missing, "0 - X - -", 1, 2, 0},
		{3, 2, Breaching, "- - - - -", 3, 0, 3},
		{3, 2, NotBreaching, "- - - - -", 0, 0, 3},
		{3, 2, Missing, "0 X X - X", 3, 4, 0}, // most recent three real: X X X
		{3, 2, Missing, "X 0 0 X X", 2, 5, 0}, // the old X is not needed
	}
	for _, tt := range tests {
		ev := run(t, cfg(tt.n, tt.m, tt.treat), InsufficientData, tt.pattern)
		if ev.Breaching != tt.breaching || ev.Present != tt.present || ev.Filled != tt.filled {
			t.Errorf("%q %s: breaching/present/filled = %d/%d/%d, want %d/%d/%d (%s)", tt.pattern, tt.treat,
				ev.Breaching, ev.Present, ev.Filled, tt.breaching, tt.present, tt.filled, ev.Reason)
		}
	}
}

func TestReasons(t *testing.T) {
	tests := []struct {
		name    string
		n, m    int
		treat   MissingData
		pattern string
		want    string
	}{
		{"brief example", 3, 2, Missing, "- - X X 0",
			"Threshold Crossed: 2 out of the last 3 datapoints [15.0 (10:02), 15.0 (10:03)] were greater than the threshold (10.0) (minimum 2 datapoints for ALARM)"},
		{"ok lists all evaluated", 3, 2, Missing, "X X 0 X 0",
			"Within threshold: 1 out of the last 3 datapoints was greater than the threshold (10.0) (minimum 2 datapoints for ALARM) [5.0 (10:02), 15.0 (10:03), 5.0 (10:04)]"},
		{"filled as breaching", 3, 3, Breaching, "- - X - -",
			"Threshold Crossed: 3 out of the last 3 datapoints [15.0 (10:02), missing (10:03), missing (10:04)] were greater than the threshold (10.0) (minimum 3 datapoints for ALARM) (2 missing datapoints treated as breaching)"},
		{"filled as not breaching", 3, 3, NotBreaching, "- - X - -",
			"Within threshold: 1 out of the last 3 datapoints was greater than the threshold (10.0) (minimum 3 datapoints for ALARM) (2 missing datapoints treated as not breaching) [15.0 (10:02), missing (10:03), missing (10:04)]"},
		{"all missing", 3, 3, Missing, "- - - - -",
			"Insufficient Data: no datapoints were received for 5 periods"},
		{"all missing breaching", 3, 2, Breaching, "- - - - -",
			"Threshold Crossed: no datapoints were received for 5 periods and 3 missing datapoints were treated as breaching (minimum 2 datapoints for ALARM)"},
		{"all missing not breaching", 3, 2, NotBreaching, "- - - - -",
			"Within threshold: no datapoints were received for 5 periods and 3 missing datapoints were treated as not breaching (minimum 2 datapoints for ALARM)"},
		{"premature", 3, 3, Missing, "- - X - -",
			"Threshold Crossed: 1 out of the 1 datapoint present in the last 5 periods [15.0 (10:02)] was greater than the threshold (10.0) and the oldest is 3 periods old, at least the 3 datapoints to alarm (CloudWatch's premature-alarm rule; missing data treated as missing)"},
		{"few present, enough breach", 3, 2, Missing, "X X - - -",
			"Threshold Crossed: 2 out of the 2 datapoints present in the last 5 periods [15.0 (10:00), 15.0 (10:01)] were greater than the threshold (10.0) (minimum 2 datapoints for ALARM)"},
		{"few present, ok", 3, 2, Missing, "0 - X - -",
			"Within threshold: 1 out of the 2 datapoints present in the last 5 periods was greater than the threshold (10.0) (minimum 2 datapoints for ALARM; missing data treated as missing) [5.0 (10:00), 15.0 (10:02)]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := run(t, cfg(tt.n, tt.m, tt.treat), InsufficientData, tt.pattern)
			if ev.Reason != tt.want {
				t.Errorf("reason\n got %q\nwant %q", ev.Reason, tt.want)
			}
		})
	}
}

func TestIgnoreRetainReason(t *testing.T) {
	ev := run(t, cfg(3, 3, Ignore), Alarm, "- - X - -")
	want := "Missing data ignored: 1 out of the 1 datapoint present in the last 5 periods [15.0 (10:02)] was greater than the threshold (10.0), fewer than 3 present; state stays ALARM"
	if ev.State != Alarm || ev.Reason != want {
		t.Errorf("got %s %q\nwant ALARM %q", ev.State, ev.Reason, want)
	}
}

func TestLongReasonIsTrimmed(t *testing.T) {
	c := cfg(30, 30, Missing)
	ev := run(t, c, InsufficientData, strings.Repeat("X ", 32))
	if ev.State != Alarm {
		t.Fatalf("state %s", ev.State)
	}
	if !strings.Contains(ev.Reason, "[20 earlier..., 15.0 (10:22),") || strings.Count(ev.Reason, "15.0 (") != maxListed {
		t.Errorf("reason not trimmed to the last %d datapoints: %s", maxListed, ev.Reason)
	}
}

func TestComparisons(t *testing.T) {
	tests := []struct {
		c                 Comparison
		below, eq, higher bool
	}{
		{GreaterThanThreshold, false, false, true},
		{GreaterThanOrEqualToThreshold, false, true, true},
		{LessThanThreshold, true, false, false},
		{LessThanOrEqualToThreshold, true, true, false},
		{Comparison(0), false, false, false},
	}
	for _, tt := range tests {
		if got := [3]bool{tt.c.Breaches(9, 10), tt.c.Breaches(10, 10), tt.c.Breaches(11, 10)}; got != [3]bool{tt.below, tt.eq, tt.higher} {
			t.Errorf("%s: breaches(9,10,11 vs 10) = %v", tt.c, got)
		}
		if tt.c.Breaches(math.NaN(), 10) {
			t.Errorf("%s: NaN breaches", tt.c)
		}
	}
}

func TestLessThanAlarm(t *testing.T) {
	// Availability alarms compare the other way: 99.0 < 99.9 breaches.
	c := Config{Name: "availability", Period: 10 * time.Second, EvaluationPeriods: 2, Comparison: LessThanThreshold, Threshold: 99.9}
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	m.Put(t0, 99.0)
	m.Put(t0.Add(10*time.Second), 98.5)
	ev := m.Evaluate(t0.Add(20 * time.Second))
	want := "Threshold Crossed: 2 out of the last 2 datapoints [99.0 (10:00:00), 98.5 (10:00:10)] were less than the threshold (99.9) (minimum 2 datapoints for ALARM)"
	if ev.State != Alarm || ev.Reason != want {
		t.Errorf("got %s %q\nwant ALARM %q", ev.State, ev.Reason, want)
	}
}

func TestParse(t *testing.T) {
	for c := GreaterThanThreshold; c <= LessThanOrEqualToThreshold; c++ {
		got, err := ParseComparison(c.String())
		if err != nil || got != c {
			t.Errorf("ParseComparison(%q) = %v, %v", c.String(), got, err)
		}
	}
	for s, want := range map[string]Comparison{">": GreaterThanThreshold, ">=": GreaterThanOrEqualToThreshold, "<": LessThanThreshold, "<=": LessThanOrEqualToThreshold} {
		if got, err := ParseComparison(s); err != nil || got != want {
			t.Errorf("ParseComparison(%q) = %v, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "greaterthanthreshold", "LessThanLowerOrGreaterThanUpperThreshold", "=="} {
		if _, err := ParseComparison(bad); err == nil {
			t.Errorf("ParseComparison(%q) succeeded", bad)
		}
	}
	if s := Comparison(9).String(); s != "Comparison(9)" {
		t.Errorf("invalid String() = %q", s)
	}

	for s, want := range map[string]MissingData{"": Missing, "missing": Missing, "ignore": Ignore, "breaching": Breaching, "notBreaching": NotBreaching} {
		if got, err := ParseMissingData(s); err != nil || got != want {
			t.Errorf("ParseMissingData(%q) = %v, %v", s, got, err)
		}
	}
	for _, bad := range []string{"notbreaching", "Missing", "not_breaching"} {
		if _, err := ParseMissingData(bad); err == nil {
			t.Errorf("ParseMissingData(%q) succeeded", bad)
		}
	}

	for _, s := range []State{OK, Alarm, InsufficientData} {
		if got, err := ParseState(string(s)); err != nil || got != s {
			t.Errorf("ParseState(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseState("ok"); err == nil {
		t.Error(`ParseState("ok") succeeded`)
	}
}

func TestComparisonJSON(t *testing.T) {
	var c struct{ Op Comparison }
	if err := json.Unmarshal([]byte(`{"Op":"LessThanOrEqualToThreshold"}`), &c); err != nil || c.Op != LessThanOrEqualToThreshold {
		t.Fatalf("unmarshal: %v %v", c.Op, err)
	}
	b, err := json.Marshal(c)
	if err != nil || string(b) != `{"Op":"LessThanOrEqualToThreshold"}` {
		t.Errorf("marshal: %s %v", b, err)
	}
	if err := json.Unmarshal([]byte(`{"Op":"bogus"}`), &c); err == nil {
		t.Error("unmarshal of unknown comparison succeeded")
	}
	if _, err := json.Marshal(struct{ Op Comparison }{}); err == nil {
		t.Error("marshal of zero comparison succeeded")
	}
}

func TestValidate(t *testing.T) {
	good := cfg(3, 2, Missing)
	tests := []struct {
		name  string
		edit  func(*Config)
		field string // "" means valid
	}{
		{"valid", func(*Config) {}, ""},
		{"default M", func(c *Config) { c.DatapointsToAlarm = 0 }, ""},
		{"default treat", func(c *Config) { c.TreatMissing = "" }, ""},
		{"no name", func(c *Config) { c.Name = "" }, "Name"},
		{"long name", func(c *Config) { c.Name = strings.Repeat("a", 256) }, "Name"},
		{"zero period", func(c *Config) { c.Period = 0 }, "Period"},
		{"negative period", func(c *Config) { c.Period = -time.Second }, "Period"},
		{"zero N", func(c *Config) { c.EvaluationPeriods = 0 }, "EvaluationPeriods"},
		{"M above N", func(c *Config) { c.DatapointsToAlarm = 4 }, "DatapointsToAlarm"},
		{"negative M", func(c *Config) { c.DatapointsToAlarm = -1 }, "DatapointsToAlarm"},
		{"no comparison", func(c *Config) { c.Comparison = 0 }, "Comparison"},
		{"NaN threshold", func(c *Config) { c.Threshold = math.NaN() }, "Threshold"},
		{"Inf threshold", func(c *Config) { c.Threshold = math.Inf(1) }, "Threshold"},
		{"bad treat", func(c *Config) { c.TreatMissing = "sometimes" }, "TreatMissing"},
	}
	for _, tt := range tests {
		c := good
		tt.edit(&c)
		err := c.Validate()
		_, newErr := New(c)
		switch {
		case tt.field == "" && (err != nil || newErr != nil):
			t.Errorf("%s: unexpected error %v / %v", tt.name, err, newErr)
		case tt.field != "" && (err == nil || newErr == nil):
			t.Errorf("%s: no error", tt.name)
		case tt.field != "" && (!strings.Contains(err.Error(), tt.field) || strings.Contains(err.Error(), "\n")):
			t.Errorf("%s: error %q does not name %s on one line", tt.name, err, tt.field)
		}
	}
	m, _ := New(Config{Name: "x", Period: time.Minute, EvaluationPeriods: 4, Comparison: GreaterThanThreshold})
	if c := m.Config(); c.DatapointsToAlarm != 4 || c.TreatMissing != Missing {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestPeriods(t *testing.T) {
	c := cfg(1, 1, Missing)
	tests := []struct {
		name  string
		put   time.Time
		now   time.Time
		state State
	}{
		{"complete period is evaluated", at(0), at(1), Alarm},
		{"mid-period timestamp is aligned down", at(0).Add(42 * time.Second), at(1), Alarm},
		{"current period is not complete", at(1), at(1).Add(59 * time.Second), OK},
		{"period ending exactly now is complete", at(1), at(2), Alarm},
		{"future period is not evaluated", at(3), at(2), OK},
	}
	for _, tt := range tests {
		m, _ := New(c)
		m.Put(at(0), 5) // a non-breaching point keeps "not evaluated" distinguishable from missing
		m.Put(at(1), 5)
		m.Put(tt.put, 15)
		ev := m.Evaluate(tt.now)
		if ev.State != tt.state {
			t.Errorf("%s: state %s, want %s (%s)", tt.name, ev.State, tt.state, ev.Reason)
		}
	}
}

func TestDatapointsAndStart(t *testing.T) {
	m, _ := New(cfg(3, 3, Missing))
	m.Put(at(1), 1)
	m.Put(at(3), 3)
	m.Put(at(3), 4) // replaces
	m.Put(at(4), 7)
	m.Put(at(4), math.NaN()) // removes
	ev := m.Evaluate(at(5).Add(time.Second))
	if !ev.Start.Equal(at(0)) {
		t.Errorf("Start = %v, want %v", ev.Start, at(0))
	}
	want := []float64{math.NaN(), 1, math.NaN(), 4, math.NaN()}
	if len(ev.Datapoints) != len(want) {
		t.Fatalf("Datapoints = %v", ev.Datapoints)
	}
	for i := range want {
		if math.IsNaN(want[i]) != math.IsNaN(ev.Datapoints[i]) || (!math.IsNaN(want[i]) && want[i] != ev.Datapoints[i]) {
			t.Fatalf("Datapoints = %v, want %v", ev.Datapoints, want)
		}
	}
}

func TestBeforeEpoch(t *testing.T) {
	c := cfg(1, 1, Missing)
	c.Period = time.Hour
	m, _ := New(c)
	start := time.Date(1969, 12, 31, 22, 0, 0, 0, time.UTC)
	m.Put(start.Add(30*time.Minute), 20) // aligns down to 22:00
	ev := m.Evaluate(start.Add(time.Hour))
	if ev.State != Alarm || !ev.Start.Equal(time.Date(1969, 12, 31, 20, 0, 0, 0, time.UTC)) {
		t.Errorf("got %s start %v (%s)", ev.State, ev.Start, ev.Reason)
	}
}

func TestMemoryBounded(t *testing.T) {
	c := cfg(3, 2, Missing)
	m, _ := New(c)
	for k := range 10_000 {
		m.Put(at(k), float64(k%20))
		if k%7 == 0 {
			m.Evaluate(at(k))
		}
	}
	if n := len(m.points); n > c.EvaluationRange()+1 {
		t.Errorf("%d datapoints kept, want at most %d", n, c.EvaluationRange()+1)
	}
	// A datapoint that can no longer be evaluated is dropped on arrival.
	m.Put(at(0), 99)
	if _, ok := m.points[m.index(at(0))]; ok {
		t.Error("stale datapoint kept")
	}
	// The previous period survives while the current one is being written.
	m, _ = New(cfg(1, 1, Missing))
	m.Put(at(0), 15)
	m.Put(at(1), 5) // period 1 still in progress
	if ev := m.Evaluate(at(1).Add(time.Second)); ev.State != Alarm {
		t.Errorf("state %s, want ALARM from period 0 (%s)", ev.State, ev.Reason)
	}
}

// A sustained run: the alarm goes to ALARM after M of N breaches and back to
// OK when breaches age out, the way the guide's first figure describes.
func TestTimeline(t *testing.T) {
	m, _ := New(cfg(3, 3, Missing))
	values := []float64{1, 2, 11, 12, 13, 4, 5, 6, 20, 1}
	want := []State{OK, OK, OK, OK, Alarm, OK, OK, OK, OK, OK}
	for k, v := range values {
		m.Put(at(k), v)
		ev := m.Evaluate(at(k + 1))
		// Until three datapoints exist, 1 or 2 non-breaching ones give OK.
		if ev.State != want[k] {
			t.Errorf("after period %d: %s, want %s (%s)", k, ev.State, want[k], ev.Reason)
		}
	}
}

func TestCWFloat(t *testing.T) {
	for v, want := range map[float64]string{12: "12.0", 0.5: "0.5", -3: "-3.0", 99.95: "99.95", 1e21: "1000000000000000000000.0", math.Inf(1): "+Inf", math.NaN(): "NaN"} {
		if got := cwFloat(v); got != want {
			t.Errorf("cwFloat(%v) = %q, want %q", v, got, want)
		}
	}
}
