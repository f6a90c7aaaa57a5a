package loglimit

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestLimiterBoundsLinesAndLength: a flood of refusals writes Burst lines
// per interval, each string cut short, and the next interval's first line
// counts what was held back.
func TestLimiterBoundsLinesAndLength(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	l := New(slog.New(slog.NewTextHandler(&buf, nil))).WithClock(func() time.Time { return now })
	big := strings.Repeat("x", 1<<20)
	for range 1000 {
		l.Warn(context.Background(), "refused", slog.String("why", big), slog.Any("err", errors.New(big)))
	}
	if n := strings.Count(buf.String(), "\n"); n != DefaultBurst {
		t.Fatalf("%d lines, want %d", n, DefaultBurst)
	}
	if buf.Len() > DefaultBurst*(2*DefaultMaxLen+200) {
		t.Fatalf("log grew %d bytes from 1000 lines of 2 MiB each", buf.Len())
	}
	buf.Reset()
	now = now.Add(DefaultEvery)
	l.Warn(context.Background(), "refused")
	if !strings.Contains(buf.String(), "suppressed=990") {
		t.Fatalf("next line: %s", buf.String())
	}
}

func TestTruncateRuneBoundary(t *testing.T) {
	s := Truncate("ééé", 3)
	if !strings.HasPrefix(s, "é…") {
		t.Fatalf("%q", s)
	}
}
