// Package loglimit keeps log lines that outsiders can cause (unauthenticated
// or malformed requests) from growing the log without bound: at most a few
// such lines per interval get through, each string in them truncated, and
// the next line through says how many were held back. Every listener that
// takes untrusted input logs its refusals through one Limiter.
package loglimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Defaults of New.
const (
	DefaultBurst  = 10               // lines per interval
	DefaultEvery  = 10 * time.Second // the interval
	DefaultMaxLen = 256              // bytes of one string attribute
)

// Limiter passes at most Burst lines per Every to its logger.
type Limiter struct {
	log    *slog.Logger
	burst  int
	every  time.Duration
	maxLen int
	now    func() time.Time

	mu         sync.Mutex
	start      time.Time
	n          int
	suppressed int
}

// New returns a Limiter with the defaults over log (nil: discard).
func New(log *slog.Logger) *Limiter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Limiter{log: log, burst: DefaultBurst, every: DefaultEvery, maxLen: DefaultMaxLen, now: time.Now}
}

// WithClock sets the clock (tests).
func (l *Limiter) WithClock(now func() time.Time) *Limiter { l.now = now; return l }

// Log writes one line at level, unless this interval's lines are spent.
// String, error and Stringer attributes are truncated to DefaultMaxLen.
func (l *Limiter) Log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if l == nil || !l.log.Enabled(ctx, level) {
		return
	}
	l.mu.Lock()
	now := l.now()
	if now.Sub(l.start) >= l.every {
		l.start, l.n = now, 0
	}
	if l.n >= l.burst {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	l.n++
	held := l.suppressed
	l.suppressed = 0
	l.mu.Unlock()
	for i, a := range attrs {
		attrs[i] = l.truncate(a)
	}
	if held > 0 {
		attrs = append(attrs, slog.Int("suppressed", held))
	}
	l.log.LogAttrs(ctx, level, msg, attrs...)
}

// Warn is Log at LevelWarn.
func (l *Limiter) Warn(ctx context.Context, msg string, attrs ...slog.Attr) {
	l.Log(ctx, slog.LevelWarn, msg, attrs...)
}

func (l *Limiter) truncate(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	var s string
	switch v.Kind() {
	case slog.KindString:
		s = v.String()
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			s = x.Error()
		case fmt.Stringer:
			s = x.String()
		default:
			return a
		}
	default:
		return a
	}
	return slog.String(a.Key, Truncate(s, l.maxLen))
}

// Truncate cuts s to at most max bytes (on a rune boundary), saying how
// long it was.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:cut], len(s))
}
