package duration

import (
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{time.Nanosecond, "1ns"},
		{100 * time.Millisecond, "100ms"},
		{90 * time.Second, "1m30s"},
		{6 * time.Minute, "6m"},
		{time.Hour, "1h"},
		{80 * time.Hour, "80h"},
		{time.Hour + 30*time.Minute, "1h30m"},
		{time.Hour + time.Second, "1h0m1s"},
		{-2 * time.Minute, "-2m"},
		{time.Minute + 500*time.Millisecond, "1m0.5s"},
	} {
		if got := Format(c.d); got != c.want {
			t.Errorf("Format(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}
