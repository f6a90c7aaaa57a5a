package config

import (
	"testing"
	"time"
)

// The silence window is three of the slowest periodic source's intervals,
// never under 10 s, and reaches the detection engine.
func TestSilenceWindow(t *testing.T) {
	tests := []struct {
		name     string
		canaries []time.Duration
		sources  []time.Duration
		want     time.Duration
	}{
		{"no periodic source", nil, nil, 10 * time.Second},
		{"fast canaries", []time.Duration{time.Second}, nil, 10 * time.Second},
		{"canaries every 10s", []time.Duration{10 * time.Second, 10 * time.Second, 5 * time.Second}, nil, 30 * time.Second},
		{"slow prometheus", []time.Duration{10 * time.Second}, []time.Duration{0, time.Minute}, 3 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Resource{Zones: []string{"a", "b"}}
			for _, d := range tc.canaries {
				r.Canaries = append(r.Canaries, Canary{Zone: "a", Interval: d})
			}
			for _, d := range tc.sources {
				r.Telemetry.Sources = append(r.Telemetry.Sources, Source{Interval: d})
			}
			if got := r.SilenceWindow(); got != tc.want {
				t.Errorf("SilenceWindow() = %s, want %s", got, tc.want)
			}
			if got := r.DetectConfig().SilenceWindow; got != tc.want {
				t.Errorf("DetectConfig().SilenceWindow = %s, want %s", got, tc.want)
			}
		})
	}
}
