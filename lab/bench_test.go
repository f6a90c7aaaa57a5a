package lab

import (
	"context"
	"os"
	"testing"

	"github.com/grayzone/grayzone/lab/scenario"
)

// BenchmarkSimWorkshop is sim mode's speed on the workshop scenario (6 simulated minutes).
func BenchmarkSimWorkshop(b *testing.B) {
	for _, profile := range []string{"default", "cloudwatch"} {
		b.Run(profile, func(b *testing.B) {
			sc, err := scenario.Builtin(scenario.DefaultName)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := Run(context.Background(), Options{Scenario: sc, Mode: ModeSim, Detector: profile}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSimHourAt200 is issue 21's speed target: one simulated hour at
// 200 req/s over 3 zones of 2 instances, canaries every 10 s, no faults
// (the target is 10,000× real time: 0.36 s of CPU per simulated hour).
func BenchmarkSimHourAt200(b *testing.B) {
	for _, profile := range []string{"default", "cloudwatch"} {
		b.Run(profile, func(b *testing.B) {
			sc, err := scenario.Parse("h200.yaml", []byte(`{version: 1, name: h200, seed: 3, duration: 1h,
topology: {zones: [az-a, az-b, az-c], instances_per_zone: 2}, load: {rps: 200}, canary: {interval: 10s}}`))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := Run(context.Background(), Options{Scenario: sc, Mode: ModeSim, Detector: profile}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSimCorpusDay is one day of the day corpus (benchmark/corpus/day,
// day-002: 24 h, diurnal load of a few to a few hundred req/s, a real zonal
// fault among the nuisance ones) under the default profile: what
// "grayzone bench detect --corpus day" pays per day and profile. Quiet at
// night, so the engine's per-tick work weighs more than at 200 req/s.
func BenchmarkSimCorpusDay(b *testing.B) {
	raw, err := os.ReadFile("../benchmark/corpus/day/day-002.yaml")
	if err != nil {
		b.Fatal(err)
	}
	sc, err := scenario.Parse("day-002.yaml", raw)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Run(context.Background(), Options{Scenario: sc, Mode: ModeSim, Detector: "default"}); err != nil {
			b.Fatal(err)
		}
	}
}
