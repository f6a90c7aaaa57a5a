package practice

import (
	"encoding/json"
	"testing"
	"time"
)

// monday is 2026-01-05, a Monday, 00:00 UTC.
var monday = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return monday.Add(d) }

func TestParseWindow(t *testing.T) {
	tests := []struct {
		in         string
		start, end time.Duration
		err        string
	}{
		{in: "Mon:09:00-Mon:17:00", start: 9 * time.Hour, end: 17 * time.Hour},
		{in: "Fri:22:00-Mon:06:00", start: 4*day + 22*time.Hour, end: 6 * time.Hour},
		{in: "Sun:23:59-Mon:00:00", start: 6*day + 23*time.Hour + 59*time.Minute, end: 0},
		{in: "Tue:00:00-Wed:00:00", start: day, end: 2 * day},
		{in: "Mon:9:00-Mon:17:00", err: `"Mon:9:00-Mon:17:00" is not a valid window (Day:HH:MM-Day:HH:MM in UTC, e.g. Mon:09:00-Mon:17:00)`},
		{in: "", err: `"" is not a valid window (Day:HH:MM-Day:HH:MM in UTC, e.g. Mon:09:00-Mon:17:00)`},
		{in: "Mon:09:00 - Mon:17:00", err: `"Mon:09:00 - Mon:17:00" is not a valid window (Day:HH:MM-Day:HH:MM in UTC, e.g. Mon:09:00-Mon:17:00)`},
		{in: "mon:09:00-Mon:17:00", err: `"mon:09:00-Mon:17:00": "mon" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)`},
		{in: "Mon:09:00-Xyz:17:00", err: `"Mon:09:00-Xyz:17:00": "Xyz" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)`},
		{in: "Mon:24:00-Tue:01:00", err: `"Mon:24:00-Tue:01:00": hour 24 is out of range (00..23)`},
		{in: "Mon:09:00-Mon:09:60", err: `"Mon:09:00-Mon:09:60": minute 60 is out of range (00..59)`},
		{in: "Wed:10:00-Wed:10:00", err: `"Wed:10:00-Wed:10:00" is empty (start equals end)`},
	}
	for _, tt := range tests {
		w, err := ParseWindow(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseWindow(%q) error = %v, want %s", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseWindow(%q): %v", tt.in, err)
			continue
		}
		if w.Start != tt.start || w.End != tt.end {
			t.Errorf("ParseWindow(%q) = %v..%v, want %v..%v", tt.in, w.Start, w.End, tt.start, tt.end)
		}
		if w.String() != tt.in {
			t.Errorf("String() = %q, want %q", w.String(), tt.in)
		}
	}
}

func TestWindowContains(t *testing.T) {
	workday := mustWindow(t, "Mon:09:00-Mon:17:00")
	weekend := mustWindow(t, "Fri:22:00-Mon:06:00")
	ny := time.FixedZone("EST", -5*3600)
	tests := []struct {
		name string
		w    Window
		t    time.Time
		want bool
	}{
		{"start inclusive", workday, at(9 * time.Hour), true},
		{"just before start", workday, at(9*time.Hour - time.Nanosecond), false},
		{"inside", workday, at(12 * time.Hour), true},
		{"just before end", workday, at(17*time.Hour - time.Nanosecond), true},
		{"end exclusive", workday, at(17 * time.Hour), false},
		{"next week", workday, at(week + 10*time.Hour), true},
		{"other day", workday, at(day + 10*time.Hour), false},
		{"time zone converted to UTC", workday, at(9 * time.Hour).In(ny), true},
		{"wrap: start inclusive", weekend, at(4*day + 22*time.Hour), true},
		{"wrap: before start", weekend, at(4*day + 22*time.Hour - time.Second), false},
		{"wrap: saturday", weekend, at(5*day + 12*time.Hour), true},
		{"wrap: last instant of the week", weekend, at(week - time.Nanosecond), true},
		{"wrap: monday 00:00", weekend, at(0), true},
		{"wrap: before end", weekend, at(6*time.Hour - time.Nanosecond), true},
		{"wrap: end exclusive", weekend, at(6 * time.Hour), false},
		{"wrap: midweek", weekend, at(2*day + 12*time.Hour), false},
	}
	for _, tt := range tests {
		if got := tt.w.Contains(tt.t); got != tt.want {
			t.Errorf("%s: %v.Contains(%v) = %v, want %v", tt.name, tt.w, tt.t, got, tt.want)
		}
	}
}

func TestWindowNext(t *testing.T) {
	weekend := mustWindow(t, "Fri:22:00-Mon:06:00")
	tests := []struct {
		from, want time.Time
	}{
		{at(0), at(0)}, // inside
		{at(6 * time.Hour), at(4*day + 22*time.Hour)},
		{at(4*day + 22*time.Hour + time.Nanosecond), at(4*day + 22*time.Hour + time.Nanosecond)},
		{at(6*day - time.Hour - week), at(-week + 6*day - time.Hour)}, // inside, a week earlier
	}
	for _, tt := range tests {
		if got := weekend.next(tt.from); !got.Equal(tt.want) {
			t.Errorf("next(%v) = %v, want %v", tt.from, got, tt.want)
		}
	}
}

func TestParseDate(t *testing.T) {
	d, err := ParseDate("2026-12-24")
	if err != nil || d != (Date{2026, time.December, 24}) || d.String() != "2026-12-24" {
		t.Fatalf("ParseDate = %v, %v", d, err)
	}
	for _, in := range []string{"", "2026-02-30", "2026-1-24", "2026-12-24T00:00:00Z", "24.12.2026", " 2026-12-24"} {
		_, err := ParseDate(in)
		want := `"` + in + `" is not a valid date (YYYY-MM-DD, e.g. 2026-12-24)`
		if err == nil || err.Error() != want {
			t.Errorf("ParseDate(%q) error = %v, want %s", in, err, want)
		}
	}
}

func TestDateContains(t *testing.T) {
	d := Date{2026, time.December, 24}
	day := time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		t    time.Time
		want bool
	}{
		{day, true},
		{day.Add(-time.Nanosecond), false},
		{day.Add(24*time.Hour - time.Nanosecond), true},
		{day.Add(24 * time.Hour), false},
		// 23:00 on the 23rd in UTC-5 is 04:00 on the 24th UTC.
		{time.Date(2026, 12, 23, 23, 0, 0, 0, time.FixedZone("EST", -5*3600)), true},
	}
	for _, tt := range tests {
		if got := d.Contains(tt.t); got != tt.want {
			t.Errorf("Contains(%v) = %v, want %v", tt.t, got, tt.want)
		}
	}
}

func TestTextRoundTrip(t *testing.T) {
	type doc struct {
		W []Window
		D []Date
	}
	in := doc{W: []Window{mustWindow(t, "Fri:22:00-Mon:06:00")}, D: []Date{{2026, 12, 24}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"W":["Fri:22:00-Mon:06:00"],"D":["2026-12-24"]}` {
		t.Errorf("json = %s", b)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil || out.W[0] != in.W[0] || out.D[0] != in.D[0] {
		t.Errorf("round trip = %+v, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"W":["nope"]}`), &out); err == nil {
		t.Error("bad window unmarshalled")
	}
}

func mustWindow(t testing.TB, s string) Window {
	t.Helper()
	w, err := ParseWindow(s)
	if err != nil {
		t.Fatal(err)
	}
	return w
}
