// Package console shows a lab run while it goes: on a terminal a compact
// status block redrawn in place, in a pipe or a CI log plain short lines, and
// in both the run's events (fault, detection, shift, exclusion, recovery) as
// lines of their own when they happen.
//
// Rendering is pure (a Status or an Event and a width in, lines out, in this
// file) so that it is tested without a terminal; Console (console.go) is the
// thin writer that decides when to print and moves the cursor.
package console

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/grayzone/grayzone/internal/duration"
	"github.com/grayzone/grayzone/report"
)

// PlainWidth is the longest line of plain output: short enough for a CI log
// viewer, long enough for three zones, the shift and the customers.
const PlainWidth = 100

// Status is a snapshot of a run for display.
type Status struct {
	Elapsed, Total time.Duration
	Zones          []Zone
	// ShiftZone is the zone traffic is shifted away from ("": none) and
	// Phase the runbook's phase (shifting, shifted, restoring, ending).
	ShiftZone, Phase string
	// Regional: the impact is in every zone, which a zonal shift cannot help.
	Regional bool
	// FailStatic names why the detector doubts its own view ("": it does
	// not); while it does, no new shift starts.
	FailStatic string
	// Group is the instance group: running instances per zone and exclusions.
	Group     string
	Customers report.Requests
}

// Zone is one zone's server-side view over the detector's last 10 s.
type Zone struct {
	Name         string
	Availability float64 // 0..1
	P99          float64 // ms; < 0: no data
	Requests     int64   // 0: no data, Availability means nothing
	State        string  // ok, impacted, ISOLATED
}

// Event is something that happened during the run, at scenario time At.
type Event struct {
	At   time.Duration
	What string // one word: fault, detected, shifted, excluded, recovered, ...
	Text string
}

// EventLine is an event on a line of its own, at most width runes.
func EventLine(e Event, width int) string {
	return fit(fmt.Sprintf("%7s  %-10s %s", seconds(e.At), e.What, e.Text), width)
}

// Block is the status block of a terminal, no line longer than width: a line
// per zone, the shift, instance group and customers packed into as few lines
// as the width allows, and elapsed / total with a progress bar.
func Block(s Status, width int) []string {
	var lines []string
	name := 0
	for _, z := range s.Zones {
		name = max(name, utf8.RuneCountInString(z.Name))
	}
	for _, z := range s.Zones {
		avail, p99 := "   -   ", "   -"
		if z.Requests > 0 {
			avail = fmt.Sprintf("%6.2f %%", 100*z.Availability)
		}
		if z.P99 >= 0 {
			p99 = fmt.Sprintf("%4.0f", z.P99)
		}
		lines = append(lines, fit(fmt.Sprintf("%-*s  availability %s  p99 %s ms  %s", name, z.Name, avail, p99, z.State), width))
	}
	lines = append(lines, pack([]string{"shift: " + shift(s), "group: " + s.Group, "customers: " + s.Customers.Failures("")}, "   ", width)...)
	return append(lines, progressLine(s, width))
}

// Line is the plain status line, at most width runes (PlainWidth in a pipe):
// the facts of the block, terser, the least needed dropped first when they
// do not fit: the group (its exclusion was an event line of its own), the
// healthy zones' p99, the customers' total, then the other zones' p99 and state.
func Line(s Status, width int) string {
	zones := make([]string, 0, len(s.Zones))
	brief := make([]string, 0, len(s.Zones))    // healthy zones without their p99
	shortest := make([]string, 0, len(s.Zones)) // availability alone
	for _, z := range s.Zones {
		shortest = append(shortest, fmt.Sprintf("%s %s", z.Name, percent(z)))
		p99 := "-"
		if z.P99 >= 0 {
			p99 = fmt.Sprintf("%.0fms", z.P99)
		}
		if z.State == "ok" {
			zones = append(zones, fmt.Sprintf("%s %s %s", z.Name, percent(z), p99))
			brief = append(brief, fmt.Sprintf("%s %s", z.Name, percent(z)))
			continue
		}
		zones = append(zones, fmt.Sprintf("%s %s %s %s", z.Name, percent(z), p99, z.State))
		brief = append(brief, zones[len(zones)-1])
	}
	// Seconds, right-aligned: short, and the lines of a log line up.
	total := strconv.Itoa(int(s.Total.Seconds()))
	at := fmt.Sprintf("%*d/%ss", len(total), int(s.Elapsed.Seconds()), total)
	sh := "no shift"
	if s.ShiftZone != "" {
		sh = fmt.Sprintf("shift %s (%s)", s.ShiftZone, s.Phase)
	}
	if s.Regional {
		sh += ", REGIONAL impact"
	}
	if s.FailStatic != "" {
		sh += ", FAIL STATIC (" + s.FailStatic + ")"
	}
	cust := report.Thousands(s.Customers.Failed) + "/" + report.Thousands(s.Customers.Total) + " failed"
	var l string
	for _, parts := range [][]string{
		{at, strings.Join(zones, ", "), sh, cust, "group " + s.Group},
		{at, strings.Join(zones, ", "), sh, cust},
		{at, strings.Join(brief, ", "), sh, cust},
		{at, strings.Join(brief, ", "), sh, report.Thousands(s.Customers.Failed) + " failed"},
		{at, strings.Join(shortest, ", "), sh, report.Thousands(s.Customers.Failed) + " failed"},
	} {
		if l = strings.Join(parts, " | "); utf8.RuneCountInString(l) <= width {
			return l
		}
	}
	return fit(l, width)
}

// shift is the runbook's state for the block.
func shift(s Status) string {
	sh := "none"
	if s.ShiftZone != "" {
		sh = fmt.Sprintf("away from %s (%s)", s.ShiftZone, s.Phase)
	}
	if s.Regional {
		sh += ", REGIONAL impact"
	}
	if s.FailStatic != "" {
		sh += ", FAIL STATIC (" + s.FailStatic + ")"
	}
	return sh
}

// percent is a zone's availability with one decimal, "-" with no data.
func percent(z Zone) string {
	if z.Requests == 0 {
		return "-"
	}
	p := fmt.Sprintf("%.1f", 100*z.Availability)
	return strings.TrimSuffix(p, ".0") + "%"
}

// progressLine is "[#####.....]  40s / 1m40s, 1m left", the bar taking the
// room the times leave (none on a very narrow terminal).
func progressLine(s Status, width int) string {
	// Whole seconds, and the time left is what the elapsed shown leaves, so
	// the two always add up to the total.
	elapsed, total := s.Elapsed.Truncate(time.Second), s.Total.Truncate(time.Second)
	times := fmt.Sprintf("  %s / %s, %s left", duration.Format(elapsed), duration.Format(total), duration.Format(max(total-elapsed, 0)))
	if elapsed >= total {
		times = fmt.Sprintf("  %s / %s, done", duration.Format(elapsed), duration.Format(total))
	}
	bar := min(width-utf8.RuneCountInString(times)-2, 50)
	if bar < 10 {
		return fit(strings.TrimLeft(times, " "), width)
	}
	done := bar
	if s.Total > 0 {
		done = int(int64(bar) * int64(min(s.Elapsed, s.Total)) / int64(s.Total))
	}
	return "[" + strings.Repeat("#", done) + strings.Repeat(".", bar-done) + "]" + times
}

// pack puts parts on lines joined by sep, as many on a line as fit in width;
// a part longer than width is cut.
func pack(parts []string, sep string, width int) []string {
	var lines []string
	cur := ""
	for _, p := range parts {
		switch {
		case cur == "":
			cur = p
		case utf8.RuneCountInString(cur+sep+p) <= width:
			cur += sep + p
		default:
			lines = append(lines, fit(cur, width))
			cur = p
		}
	}
	if cur != "" {
		lines = append(lines, fit(cur, width))
	}
	return lines
}

// fit cuts s to width runes, marking the cut with an ellipsis.
func fit(s string, width int) string {
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	if width <= 0 {
		return ""
	}
	r := []rune(s)
	return string(r[:width-1]) + "…"
}

// seconds is a scenario time as the summary prints it: 22.8s.
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.1fs", d.Seconds())
}
