package practice

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

const (
	day  = 24 * time.Hour
	week = 7 * day
)

// dayNames are the week's days from Monday, the first day of an ISO week;
// window offsets count from Monday 00:00 UTC.
var dayNames = [7]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

var windowRe = regexp.MustCompile(`^([A-Za-z]{3}):([0-9]{2}):([0-9]{2})-([A-Za-z]{3}):([0-9]{2}):([0-9]{2})$`)

// Window is a weekly recurring UTC interval in which practice runs must not
// happen. Start is inclusive, End exclusive; both are offsets from Monday
// 00:00 UTC. End < Start means the window wraps the end of the week
// (Fri:22:00-Mon:06:00).
type Window struct {
	Start, End time.Duration
}

// ParseWindow reads Day:HH:MM-Day:HH:MM (UTC), e.g. Mon:09:00-Mon:17:00, the
// format of ARC's blocked windows. Days are Mon..Sun.
func ParseWindow(s string) (Window, error) {
	m := windowRe.FindStringSubmatch(s)
	if m == nil {
		return Window{}, fmt.Errorf("%s is not a valid window (Day:HH:MM-Day:HH:MM in UTC, e.g. Mon:09:00-Mon:17:00)", quote(s))
	}
	start, err := weekOffset(m[1], m[2], m[3])
	if err != nil {
		return Window{}, fmt.Errorf("%s: %v", quote(s), err)
	}
	end, err := weekOffset(m[4], m[5], m[6])
	if err != nil {
		return Window{}, fmt.Errorf("%s: %v", quote(s), err)
	}
	if start == end {
		return Window{}, fmt.Errorf("%s is empty (start equals end)", quote(s))
	}
	return Window{Start: start, End: end}, nil
}

func weekOffset(dayName, hh, mm string) (time.Duration, error) {
	d := -1
	for i, n := range dayNames {
		if n == dayName {
			d = i
		}
	}
	if d < 0 {
		return 0, fmt.Errorf("%s is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)", quote(dayName))
	}
	h, _ := strconv.Atoi(hh) // two digits, as matched
	mi, _ := strconv.Atoi(mm)
	if h > 23 {
		return 0, fmt.Errorf("hour %s is out of range (00..23)", hh)
	}
	if mi > 59 {
		return 0, fmt.Errorf("minute %s is out of range (00..59)", mm)
	}
	return time.Duration(d)*day + time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute, nil
}

// String renders the window as ParseWindow reads it.
func (w Window) String() string { return fmtOffset(w.Start) + "-" + fmtOffset(w.End) }

func fmtOffset(o time.Duration) string {
	o = mod(o, week)
	d := int(o / day)
	o -= time.Duration(d) * day
	return fmt.Sprintf("%s:%02d:%02d", dayNames[d], int(o/time.Hour), int(o%time.Hour/time.Minute))
}

// MarshalText lets a Window appear as text in JSON.
func (w Window) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText accepts what ParseWindow accepts.
func (w *Window) UnmarshalText(b []byte) error {
	v, err := ParseWindow(string(b))
	if err != nil {
		return err
	}
	*w = v
	return nil
}

// offsetOf is t's offset from the start of its (Monday-based) UTC week.
func offsetOf(t time.Time) time.Duration {
	t = t.UTC()
	wd := (int(t.Weekday()) + 6) % 7
	y, m, d := t.Date()
	return time.Duration(wd)*day + t.Sub(time.Date(y, m, d, 0, 0, 0, 0, time.UTC))
}

func mod(a, b time.Duration) time.Duration {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}

// Contains reports whether t falls in the window.
func (w Window) Contains(t time.Time) bool {
	o := offsetOf(t)
	if w.Start < w.End {
		return o >= w.Start && o < w.End
	}
	return o >= w.Start || o < w.End
}

// next returns the first instant at or after t inside the window.
func (w Window) next(t time.Time) time.Time {
	if w.Contains(t) {
		return t
	}
	return t.Add(mod(w.Start-offsetOf(t), week))
}

// Date is a whole UTC day on which practice runs must not happen.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate reads YYYY-MM-DD (a UTC calendar day).
func ParseDate(s string) (Date, error) {
	t, err := time.Parse("2006-01-02", s)
	if err != nil || len(s) != 10 {
		return Date{}, fmt.Errorf("%s is not a valid date (YYYY-MM-DD, e.g. 2026-12-24)", quote(s))
	}
	y, m, d := t.Date()
	return Date{Year: y, Month: m, Day: d}, nil
}

// String renders the date as ParseDate reads it.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }

// MarshalText lets a Date appear as text in JSON.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText accepts what ParseDate accepts.
func (d *Date) UnmarshalText(b []byte) error {
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// start is the day's first instant (UTC).
func (d Date) start() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

// Contains reports whether t falls on the day (UTC).
func (d Date) Contains(t time.Time) bool {
	s := d.start()
	return !t.Before(s) && t.Before(s.AddDate(0, 0, 1))
}

// quote shows user text in a message, shortened so a message stays one line.
func quote(s string) string {
	if r := []rune(s); len(r) > 40 {
		s = string(r[:40]) + "..."
	}
	return strconv.Quote(s)
}
