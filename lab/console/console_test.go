package console

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/grayzone/grayzone/report"
)

// incident is the smoke scenario at its worst moment: az-a isolated, shifted
// and excluded, the others carrying its load.
func incident(elapsed time.Duration) Status {
	return Status{
		Elapsed: elapsed, Total: 100 * time.Second,
		Zones: []Zone{
			{Name: "az-a", Availability: 0.5, P99: 2019, Requests: 40, State: "ISOLATED"},
			{Name: "az-b", Availability: 1, P99: 8, Requests: 300, State: "ok"},
			{Name: "az-c", Availability: 0.9987, P99: 6, Requests: 310, State: "ok"},
		},
		ShiftZone: "az-a", Phase: "shifted",
		Group:     "az-a=2(excluded) az-b=3 az-c=3",
		Customers: report.Requests{Total: 1080, Failed: 12},
	}
}

func TestBlockFitsTheWidth(t *testing.T) {
	wide := incident(40 * time.Second)
	wide.Regional = true
	wide.Customers = report.Requests{Total: 1234567, Failed: 123456}
	for _, s := range []Status{incident(40 * time.Second), wide} {
		for _, width := range []int{120, 80, 60, 30} {
			lines := Block(s, width)
			for _, l := range lines {
				if n := utf8.RuneCountInString(l); n > width {
					t.Errorf("width %d: line of %d runes: %q", width, n, l)
				}
			}
			for i, z := range s.Zones {
				if !strings.HasPrefix(lines[i], z.Name+"  ") {
					t.Errorf("width %d: line %d = %q, want zone %s", width, i, lines[i], z.Name)
				}
			}
			if last := lines[len(lines)-1]; !strings.Contains(last, "40s / 1m40s, 1m left") {
				t.Errorf("width %d: last line %q lacks elapsed / total and time left", width, last)
			}
		}
	}
	// The facts that fit stay whole: at 80 columns nothing is cut.
	got := strings.Join(Block(incident(40*time.Second), 80), "\n")
	want := `az-a  availability  50.00 %  p99 2019 ms  ISOLATED
az-b  availability 100.00 %  p99    8 ms  ok
az-c  availability  99.87 %  p99    6 ms  ok
shift: away from az-a (shifted)   group: az-a=2(excluded) az-b=3 az-c=3
customers: 12 of 1,080 failed (1.11 %)
[####################..............................]  40s / 1m40s, 1m left`
	if got != want {
		t.Errorf("block at 80 columns:\n%s\nwant:\n%s", got, want)
	}
	// A wider terminal packs the shift, group and customers on one line.
	if n80, n120 := len(Block(incident(0), 80)), len(Block(incident(0), 120)); n120 >= n80 {
		t.Errorf("block has %d lines at 120 columns, %d at 80: want fewer when wider", n120, n80)
	}
}

func TestProgressBar(t *testing.T) {
	for _, tc := range []struct {
		elapsed time.Duration
		want    string
	}{
		{0, "[..........]  0s / 1m40s, 1m40s left"},
		{50 * time.Second, "[#####.....]  50s / 1m40s, 50s left"},
		{100 * time.Second, "[##########]  1m40s / 1m40s, done"},
	} {
		s := incident(tc.elapsed)
		// The bar takes the room the times leave: size the width for ten marks.
		width := 12 + utf8.RuneCountInString(tc.want[strings.Index(tc.want, "]")+1:])
		if got := progressLine(s, width); got != tc.want {
			t.Errorf("at %s, width %d: %q, want %q", tc.elapsed, width, got, tc.want)
		}
	}
	// Too narrow for a useful bar: the times alone.
	if got := progressLine(incident(50*time.Second), 24); got != "50s / 1m40s, 50s left" {
		t.Errorf("narrow: %q", got)
	}
}

func TestPlainLine(t *testing.T) {
	// Three zones, the shift and the customers fit in 100 columns; the group
	// and the healthy zones' p99 do not.
	got := Line(incident(40*time.Second), PlainWidth)
	want := " 40/100s | az-a 50% 2019ms ISOLATED, az-b 100%, az-c 99.9% | shift az-a (shifted) | 12/1,080 failed"
	if got != want {
		t.Errorf("plain line =\n%q, want\n%q", got, want)
	}
	// Room to spare: all of it.
	want = " 40/100s | az-a 50% 2019ms ISOLATED, az-b 100% 8ms, az-c 99.9% 6ms | shift az-a (shifted) | 12/1,080 failed | group az-a=2(excluded) az-b=3 az-c=3"
	if got := Line(incident(40*time.Second), 200); got != want {
		t.Errorf("wide plain line =\n%q, want\n%q", got, want)
	}
	// Regional impact, every zone impacted: the zones' availability alone.
	s := incident(6 * time.Minute)
	s.Total = 6 * time.Minute
	s.Customers = report.Requests{Total: 7200, Failed: 228}
	s.Regional, s.ShiftZone = true, ""
	for i := range s.Zones {
		s.Zones[i].State = "impacted"
	}
	if got, want := Line(s, PlainWidth), "360/360s | az-a 50%, az-b 100%, az-c 99.9% | no shift, REGIONAL impact | 228 failed"; got != want {
		t.Errorf("plain line =\n%q, want\n%q", got, want)
	}
	// Many zones with long names: cut at the width.
	for _, n := range []string{"use2-az1", "use2-az2", "use2-az3", "use2-az4", "use2-az5", "use2-az6"} {
		s.Zones = append(s.Zones, Zone{Name: n, Availability: 0.98, P99: 120, Requests: 10, State: "impacted"})
	}
	if got := Line(s, PlainWidth); utf8.RuneCountInString(got) != PlainWidth || !strings.HasPrefix(got, "360/360s | az-a") || !strings.HasSuffix(got, "…") {
		t.Errorf("many zones: %q", got)
	}
}

func TestEventLine(t *testing.T) {
	e := Event{At: 22750 * time.Millisecond, What: "detected", Text: "az-a: isolated availability impact: " + strings.Repeat("x", 200)}
	for _, width := range []int{PlainWidth, 80, 60} {
		got := EventLine(e, width)
		if utf8.RuneCountInString(got) != width || !strings.HasPrefix(got, "  22.8s  detected   az-a: isolated") || !strings.HasSuffix(got, "…") {
			t.Errorf("width %d: %q", width, got)
		}
	}
	if got := EventLine(Event{At: 20 * time.Second, What: "fault", Text: "blackhole on zone az-a for 40s"}, 80); got != "  20.0s  fault      blackhole on zone az-a for 40s" {
		t.Errorf("short event = %q", got)
	}
}

// run feeds a console 100 s of a scenario in 250 ms ticks, as the lab does,
// with an event at 20 s, and returns what it wrote.
func run(o Options) string {
	var b bytes.Buffer
	c := New(&b, o)
	c.Println("grayzone lab: smoke")
	for t := 250 * time.Millisecond; t <= 100*time.Second; t += 250 * time.Millisecond {
		var evs []Event
		if t == 20*time.Second {
			evs = []Event{{At: t, What: "fault", Text: "blackhole on zone az-a for 40s"}}
		}
		c.Update(incident(t), evs)
	}
	return b.String()
}

func TestPlainCadenceAndEvents(t *testing.T) {
	out := run(Options{Mode: Plain})
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var status []string
	events := 0
	for _, l := range lines {
		if n := utf8.RuneCountInString(l); n > PlainWidth {
			t.Errorf("line of %d runes: %q", n, l)
		}
		if strings.Contains(l, "\x1b") {
			t.Errorf("escape sequence in plain output: %q", l)
		}
		switch {
		case strings.Contains(l, " | "):
			status = append(status, strings.Fields(l)[0])
		case strings.Contains(l, "fault "):
			events++
			if l != "  20.0s  fault      blackhole on zone az-a for 40s" {
				t.Errorf("event line = %q", l)
			}
		}
	}
	// One line every 10 s of scenario time, the first at 10 s.
	want := "10/100s 20/100s 30/100s 40/100s 50/100s 60/100s 70/100s 80/100s 90/100s 100/100s"
	if got := strings.Join(status, " "); got != want {
		t.Errorf("status lines at %s\nwant %s", got, want)
	}
	if events != 1 {
		t.Errorf("%d event lines, want 1:\n%s", events, out)
	}
	// The event comes before the status line of its tick.
	if i, j := strings.Index(out, "fault "), strings.Index(out, "20/100s"); i > j {
		t.Errorf("event after the status line of its time:\n%s", out)
	}
}

func TestPlainEvery(t *testing.T) {
	out := run(Options{Mode: Plain, Every: 25 * time.Second})
	if n := strings.Count(out, "/100s | "); n != 4 {
		t.Errorf("with a 25 s interval: %d status lines in 100 s, want 4:\n%s", n, out)
	}
}

func TestQuietPrintsNothing(t *testing.T) {
	if out := run(Options{Mode: Quiet}); out != "" {
		t.Errorf("quiet wrote %q", out)
	}
}

func TestEventsModePrintsEventsAlone(t *testing.T) {
	out := run(Options{Mode: Events, Width: func() int { return 40 }})
	want := "grayzone lab: smoke\n  20.0s  fault      blackhole on zone a…\n"
	if out != want {
		t.Errorf("events mode wrote %q, want %q", out, want)
	}
}

// term plays back what a Live console writes, as a terminal would, for the
// few sequences the console uses, and rewraps its lines when narrowed as
// tmux does.
type term struct {
	t        *testing.T
	rows     []string
	row, col int
}

var csi = regexp.MustCompile(`^\x1b\[(\d*)([AJK])`)

func (s *term) Write(p []byte) (int, error) {
	out := string(p)
	for len(out) > 0 {
		for len(s.rows) <= s.row {
			s.rows = append(s.rows, "")
		}
		line := []rune(s.rows[s.row])
		if m := csi.FindStringSubmatch(out); m != nil {
			out = out[len(m[0]):]
			switch m[2] {
			case "A":
				n, _ := strconv.Atoi(m[1])
				if s.row -= n; s.row < 0 {
					s.t.Fatalf("cursor moved above the output")
				}
			case "K", "J":
				if s.col < len(line) {
					s.rows[s.row] = string(line[:s.col])
				}
				if m[2] == "J" {
					s.rows = s.rows[:s.row+1]
				}
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(out)
		out = out[size:]
		switch r {
		case '\r':
			s.col = 0
		case '\n':
			s.row, s.col = s.row+1, 0
		case '\x1b':
			s.t.Fatalf("unexpected escape sequence at %q", out)
		default:
			for len(line) < s.col {
				line = append(line, ' ')
			}
			if s.col < len(line) {
				line[s.col] = r
			} else {
				line = append(line, r)
			}
			s.rows[s.row] = string(line)
			s.col++
		}
	}
	return len(p), nil
}

// narrow rewraps the rows above the cursor to width; the cursor stays below them.
func (s *term) narrow(width int) {
	var rows []string
	for _, r := range s.rows[:s.row] {
		rs := []rune(r)
		for len(rs) > width {
			rows, rs = append(rows, string(rs[:width])), rs[width:]
		}
		rows = append(rows, string(rs))
	}
	s.rows, s.row, s.col = rows, len(rows), 0
}

func (s *term) screen() string { return strings.Join(s.rows, "\n") }

func TestLiveRedrawsOneBlockInPlace(t *testing.T) {
	width := 100
	scr := &term{t: t}
	c := New(scr, Options{Mode: Live, Width: func() int { return width }})
	c.Println("grayzone lab: smoke")
	redraws := 0
	for tick := 250 * time.Millisecond; tick <= 100*time.Second; tick += 250 * time.Millisecond {
		var evs []Event
		switch tick {
		case 20 * time.Second:
			evs = []Event{{At: tick, What: "fault", Text: "blackhole on zone az-a for 40s"}}
		case 30 * time.Second:
			width = 60 // the terminal is narrowed: the block's long lines wrap
			scr.narrow(width)
		case 31 * time.Second:
			// A logger sharing the terminal writes above the block.
			c.Write([]byte("level=WARN msg=\"slow\"\n"))
		}
		before := scr.screen()
		c.Update(incident(tick), evs)
		if scr.screen() != before {
			redraws++
		}
		// The block is always whole at the bottom, fitted to the terminal,
		// as of the last whole second.
		want := strings.Join(append(Block(incident(tick.Truncate(time.Second)), width-1), ""), "\n")
		if got := scr.screen(); !strings.HasSuffix(got, "\n"+want) {
			t.Fatalf("at %s the screen is:\n%s\nwant it to end with:\n%s", tick, got, want)
		}
	}
	// A redraw a second, 0 s to 100 s (none between), the event drawn with its second's.
	if redraws != 101 {
		t.Errorf("%d redraws in 100 s, want 101", redraws)
	}
	want := append([]string{"grayzone lab: smoke", "  20.0s  fault      blackhole on zone az-a for 40s", `level=WARN msg="slow"`},
		Block(incident(100*time.Second), width-1)...)
	if got := scr.screen(); got != strings.Join(append(want, ""), "\n") {
		t.Errorf("screen:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	for _, r := range scr.rows {
		if utf8.RuneCountInString(r) >= width {
			t.Errorf("line reaches the terminal's last column (%d): %q", width, r)
		}
	}
}
