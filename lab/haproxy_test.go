package lab

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/grayzone/grayzone/actuator/haproxy"
	"github.com/grayzone/grayzone/lab/console"
)

// The smoke scenario with a real HAProxy as the front door: the lab
// generates its configuration, and the runbook's shift reaches HAProxy
// through actuator/haproxy.
func TestRealSmokeThroughHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("real mode runs for 100 s")
	}
	if _, err := haproxy.Binary(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	t.Parallel()
	sc := loadPublic(t, "smoke")
	var progress bytes.Buffer
	r, err := Run(context.Background(), Options{Scenario: sc, Mode: ModeReal, FrontDoor: FrontDoorHAProxy, Progress: console.New(&syncWriter{w: &progress}, console.Options{Mode: console.Plain})})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Expect.Met {
		t.Errorf("expect not met: %v\nprogress:\n%s", r.Expect.Failures, progress.String())
	}
	if len(r.Detections) == 0 || r.Detections[0].Zone != "az-a" {
		t.Errorf("detections = %+v, want az-a", r.Detections)
	}
	if len(r.ControlPlane) != 1 || r.ControlPlane[0].Restored == nil {
		t.Errorf("control plane = %+v, want az-a excluded then restored (HAProxy followed the launches)", r.ControlPlane)
	}
	// Unshifted, az-a would fail about a third of ride and pay: the drain in
	// HAProxy is what keeps the customers' failures this low.
	if r.Requests.Total < 2900 || r.Requests.Failed == 0 || r.Requests.Ratio() > 0.03 {
		t.Errorf("failed %d of %d", r.Requests.Failed, r.Requests.Total)
	}
}

func TestFrontDoorOptionErrors(t *testing.T) {
	sc := loadPublic(t, "smoke")
	for _, o := range []Options{
		{Scenario: sc, Mode: ModeReal, FrontDoor: "nginx"},
		{Scenario: sc, Mode: ModeSim, FrontDoor: FrontDoorHAProxy},
	} {
		if _, err := Run(context.Background(), o); !errors.Is(err, ErrUsage) {
			t.Errorf("%s/%s: %v, want a usage error", o.Mode, o.FrontDoor, err)
		}
	}
}
