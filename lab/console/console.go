package console

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Mode is how a Console shows the run.
type Mode int

const (
	// Quiet shows nothing; the caller prints the summary after the run.
	Quiet Mode = iota
	// Plain is for a pipe or a CI log: each event when it happens and a
	// status line every Every of scenario time, no line over PlainWidth.
	Plain
	// Events shows the events alone, fitted to the width: for a terminal
	// watching a run that is over before a redraw could be seen (sim mode).
	Events
	// Live is for a terminal: a status block redrawn in place with ANSI
	// cursor movement, fitted to the width, each event printed above it.
	Live
)

// Options configure a Console.
type Options struct {
	Mode Mode
	// Width returns the terminal's width in columns. Live and Events ask it
	// at every redraw, so the block follows a resize within a second. Nil,
	// or a result ≤ 0: PlainWidth.
	Width func() int
	// Every is the interval of Plain's status lines in scenario time (default 10 s).
	Every time.Duration
}

// ANSI control sequences of the Live block.
const (
	clearLine = "\x1b[K" // erase from the cursor to the end of the line
	clearDown = "\x1b[J" // erase from the cursor to the end of the screen
)

// Console writes a run's progress. Its methods may be called from several
// goroutines (the run loop, a logger).
type Console struct {
	mu      sync.Mutex
	w       io.Writer
	o       Options
	drawn   []int         // Live: the block's lines on screen (their lengths); the cursor is below them
	drawnAt int           // Live: the terminal's width when the block was drawn
	last    *Status       // Live: the status drawn last, redrawn under new lines
	next    time.Duration // Plain: scenario time of the next status line
	shown   time.Duration // Live: the scenario second drawn last
}

// New returns a console writing to w.
func New(w io.Writer, o Options) *Console {
	if o.Every <= 0 {
		o.Every = 10 * time.Second
	}
	return &Console{w: w, o: o, next: o.Every, shown: -1}
}

// Mode is the console's mode.
func (c *Console) Mode() Mode { return c.o.Mode }

// Println prints a line of the run's own output (the header) above the
// block; Quiet drops it.
func (c *Console) Println(line string) {
	if c.o.Mode == Quiet {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.above([]string{line})
}

// Write prints complete lines written by others (a logger sharing the
// terminal) above the block, so the block is not torn. Any mode passes them on.
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.o.Mode != Live || c.last == nil {
		return c.w.Write(p)
	}
	c.above(strings.Split(strings.TrimSuffix(string(p), "\n"), "\n"))
	return len(p), nil
}

// Update shows the run at s.Elapsed with the events since the last call.
func (c *Console) Update(s Status, events []Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.o.Mode {
	case Plain:
		var b bytes.Buffer
		for _, e := range events {
			fmt.Fprintln(&b, EventLine(e, PlainWidth))
		}
		if s.Elapsed >= c.next {
			fmt.Fprintln(&b, Line(s, PlainWidth))
			c.next = (s.Elapsed/c.o.Every + 1) * c.o.Every
		}
		if b.Len() > 0 {
			c.w.Write(b.Bytes())
		}
	case Events:
		for _, e := range events {
			fmt.Fprintln(c.w, EventLine(e, c.width()))
		}
	case Live:
		// A redraw a second is enough for figures over the last 10 s and
		// keeps the block steady; events redraw at once.
		sec := s.Elapsed.Truncate(time.Second)
		if len(events) == 0 && sec == c.shown {
			return
		}
		c.shown = sec
		c.last = &s
		width := c.width()
		lines := make([]string, 0, len(events))
		for _, e := range events {
			lines = append(lines, EventLine(e, width))
		}
		c.above(lines)
	}
}

// above prints lines and, in Live, redraws the block below them: cursor up
// to the block's first line, each line overwritten and its tail erased,
// then what the old block had below erased. One write, so no half-drawn frame.
func (c *Console) above(lines []string) {
	var b bytes.Buffer
	term := c.width() + 1 // the terminal's own width
	if c.o.Mode == Live && len(c.drawn) > 0 {
		fmt.Fprintf(&b, "\r\x1b[%dA", rows(c.drawn, c.drawnAt, term))
	}
	for _, l := range lines {
		b.WriteString(l)
		if c.o.Mode == Live {
			b.WriteString(clearLine)
		}
		b.WriteByte('\n')
	}
	if c.o.Mode == Live && c.last != nil {
		c.drawn, c.drawnAt = c.drawn[:0], term
		for _, l := range Block(*c.last, term-1) {
			b.WriteString(l + clearLine + "\n")
			c.drawn = append(c.drawn, utf8.RuneCountInString(l))
		}
		b.WriteString(clearDown)
	}
	c.w.Write(b.Bytes())
}

// rows is how many rows of the screen lines of these lengths, drawn on a
// terminal of width then, take now. A terminal narrowed since rewraps each
// line too long for it onto more rows (tmux, VTE, iTerm2, kitty and Windows
// Terminal do; xterm cuts them instead, and then the cursor moves up too
// far once); widened, it joins only lines it had wrapped, and ours fit.
func rows(lens []int, then, now int) int {
	if now >= then || now <= 0 {
		return len(lens)
	}
	n := 0
	for _, l := range lens {
		n += max(1, (l+now-1)/now)
	}
	return n
}

// width is the width to fit lines to. A Live line stops one column short of
// the terminal's edge: writing the last column leaves the cursor there, and
// the erase that follows each line would then wipe that character.
func (c *Console) width() int {
	w := PlainWidth
	if c.o.Width != nil {
		if n := c.o.Width(); n > 0 {
			w = n
		}
	}
	if c.o.Mode == Live {
		w--
	}
	return w
}
