package lab

import (
	"bytes"
	"context"
	"github.com/grayzone/grayzone/lab/console"
	"reflect"
	"testing"
)

// Through the AWS stand-in (real SDK calls: ARC zonal shifts, Auto Scaling
// subnets), every public scenario meets its expect in sim mode, and the
// decisions land at the same virtual instants as with the embedded front
// door and instance group: the AWS path adds calls, not delay or drift.
func TestSimThroughAWSMatchesEmbedded(t *testing.T) {
	for _, sc := range publicScenarios(t) {
		t.Run(sc.Name, func(t *testing.T) {
			for seed := int64(1); seed <= 2; seed++ {
				s := *sc
				s.Seed = seed
				viaAWS, err := Run(context.Background(), Options{Scenario: &s, Mode: ModeSim, FrontDoor: FrontDoorARC, ControlPlane: ControlPlaneASG})
				if err != nil {
					t.Fatal(err)
				}
				if !viaAWS.Expect.Met {
					t.Errorf("seed %d: %v", seed, viaAWS.Expect.Failures)
				}
				embedded, err := Run(context.Background(), Options{Scenario: &s, Mode: ModeSim})
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(viaAWS.Shifts, embedded.Shifts) || !reflect.DeepEqual(viaAWS.ControlPlane, embedded.ControlPlane) ||
					!reflect.DeepEqual(viaAWS.Requests, embedded.Requests) {
					t.Errorf("seed %d: through AWS\n  shifts %+v\n  control plane %+v\n  requests %+v\nembedded\n  shifts %+v\n  control plane %+v\n  requests %+v",
						seed, viaAWS.Shifts, viaAWS.ControlPlane, viaAWS.Requests, embedded.Shifts, embedded.ControlPlane, embedded.Requests)
				}
			}
		})
	}
}

func TestAWSPlaneFlags(t *testing.T) {
	sc := loadPublic(t, "smoke")
	for _, o := range []Options{{FrontDoor: "alb"}, {ControlPlane: "asg"}} {
		o.Scenario, o.Mode = sc, ModeSim
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// Real mode through the stand-in: real servers, load and canaries; every
// shift an ARC StartZonalShift that the front door obeys, every exclusion
// an UpdateAutoScalingGroup that the instance group obeys.
func TestRealSmokeThroughAWS(t *testing.T) {
	if testing.Short() {
		t.Skip("real mode runs for 100 s")
	}
	t.Parallel()
	sc := loadPublic(t, "smoke")
	var progress bytes.Buffer
	r, err := Run(context.Background(), Options{Scenario: sc, Mode: ModeReal, Progress: console.New(&syncWriter{w: &progress}, console.Options{Mode: console.Plain}),
		FrontDoor: FrontDoorARC, ControlPlane: ControlPlaneASG})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Expect.Met {
		t.Errorf("expect not met: %v\nprogress:\n%s", r.Expect.Failures, progress.String())
	}
	if len(r.Shifts) != 1 || r.Shifts[0].AwayFrom != "az-a" || len(r.ControlPlane) != 1 || r.ControlPlane[0].Restored == nil {
		t.Errorf("shifts %+v, control plane %+v", r.Shifts, r.ControlPlane)
	}
}
