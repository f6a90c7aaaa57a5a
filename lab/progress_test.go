package lab

import (
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/lab/console"
)

func TestFaultEvents(t *testing.T) {
	sc := parseInline(t, `version: 1
name: faults
duration: 2m
topology: {zones: [a, b, c], instances_per_zone: 2}
load: {rps: 10}
faults:
  - {at: 0s, duration: 30s, kind: blackhole, zone: a}
  - {at: 30s, kind: reset, zone: b, percent: 50}
`)
	show := func(evs []console.Event) string {
		var out []string
		for _, e := range evs {
			out = append(out, e.At.String()+" "+e.What+" "+e.Text)
		}
		return strings.Join(out, "; ")
	}
	for _, tc := range []struct {
		prev, now time.Duration
		want      string
	}{
		// The first update (prev -1) sees a fault that starts at 0 s.
		{-1, 250 * time.Millisecond, "0s fault blackhole on zone a for 30s"},
		{250 * time.Millisecond, 29 * time.Second, ""},
		// One ends and the other starts in the same update, each once.
		{29 * time.Second, 30 * time.Second, "30s fault over blackhole on zone a; 30s fault reset on zone b"},
		{30 * time.Second, 31 * time.Second, ""},
		// A fault that lasts to the end of the run gets no "over" line.
		{119 * time.Second, 120 * time.Second, ""},
	} {
		if got := show(faultEvents(sc, tc.prev, tc.now)); got != tc.want {
			t.Errorf("(%s, %s]: %q, want %q", tc.prev, tc.now, got, tc.want)
		}
	}
}
