package lab

import (
	"context"
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
