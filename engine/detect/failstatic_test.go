package detect

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/telemetry/observation"
)

// world feeds an engine a second at a time: 30 server-side requests spread
// over three zones of two instances, and four zonal canary calls per zone.
type world struct {
	e   *Engine
	sec int
	// server reports whether zone's instances report this second.
	server func(zone string) bool
	// canaryFails reports whether zone's canary calls fail this second.
	canaryFails func(zone string) bool
}

func newWorld(t *testing.T) *world {
	t.Helper()
	e, err := New(Config{Zones: zones3})
	if err != nil {
		t.Fatal(err)
	}
	return &world{e: e, server: func(string) bool { return true }, canaryFails: func(string) bool { return false }}
}

func (w *world) run(secs int) Assessment {
	var a Assessment
	for range secs {
		at := t0.Add(time.Duration(w.sec) * time.Second)
		for i := range 30 {
			z := zones3[i%3]
			if !w.server(z) {
				continue
			}
			w.e.Observe(observation.Observation{At: at.Add(time.Duration(i) * 30 * time.Millisecond), Source: observation.Server, Zone: z,
				Instance: fmt.Sprintf("%s-%d", z, i/3%2+1), Operation: "ride", Outcome: observation.Success, Latency: 5 * time.Millisecond})
		}
		for _, z := range zones3 {
			for k := range 4 {
				o := observation.Observation{At: at.Add(500 * time.Millisecond), Source: observation.Canary, Zone: z,
					Instance: fmt.Sprintf("%s-%d", z, k%2+1), Operation: "home", Outcome: observation.Success, Latency: 5 * time.Millisecond}
				if w.canaryFails(z) {
					o.Outcome = observation.Fault
				}
				w.e.Observe(o)
			}
		}
		w.sec++
		a = w.e.Tick(t0.Add(time.Duration(w.sec) * time.Second))
	}
	return a
}

func TestNoDoubtBeforeTelemetryNorWhileItFlows(t *testing.T) {
	w := newWorld(t)
	if a := w.e.Tick(t0); a.FailStatic.Active {
		t.Fatalf("doubt before any telemetry: %+v", a.FailStatic)
	}
	if a := w.run(60); a.FailStatic.Active || a.Isolated != "" {
		t.Fatalf("healthy traffic: fail static %+v, isolated %q", a.FailStatic, a.Isolated)
	}
}

func TestTelemetryLostInEveryZone(t *testing.T) {
	w := newWorld(t)
	w.run(30)
	w.server = func(string) bool { return false }
	// Not before the silence window (10 s, the health window) has passed.
	if a := w.run(9); a.FailStatic.Active {
		t.Fatalf("doubt after 9 s of silence: %+v", a.FailStatic)
	}
	a := w.run(2)
	fs := a.FailStatic
	if !fs.Active || fs.Reason != ReasonTelemetryLost || !strings.Contains(fs.Why, "no server observations from any zone for 10s") {
		t.Fatalf("after 11 s of silence: %+v", fs)
	}
	since := fs.Since
	if a = w.run(5); !a.FailStatic.Since.Equal(since) || !strings.HasPrefix(a.Why, "fail static since ") {
		t.Errorf("since moved %v → %v, or why %q", since, a.FailStatic.Since, a.Why)
	}
	for _, z := range a.Zones {
		if !z.Silent {
			t.Errorf("zone %s not silent", z.Zone)
		}
	}
	// One zone reporting again ends the doubt.
	w.server = func(z string) bool { return z == "az2" }
	if a := w.run(1); a.FailStatic.Active {
		t.Errorf("still in doubt with az2 reporting: %+v", a.FailStatic)
	}
}

func TestCanariesFailingInEveryZone(t *testing.T) {
	w := newWorld(t)
	w.run(30)
	w.canaryFails = func(string) bool { return true }
	a := w.run(10)
	if fs := a.FailStatic; !fs.Active || fs.Reason != ReasonCanariesFailing || !strings.Contains(fs.Why, "az1 40 of 40") {
		t.Fatalf("canaries failing everywhere: %+v", fs)
	}
	// Two zones failing is not doubt (it is the regional rule's business).
	w.canaryFails = func(z string) bool { return z != "az3" }
	if a := w.run(10); a.FailStatic.Active {
		t.Errorf("doubt with az3's canaries passing: %+v", a.FailStatic)
	}
}

// One zone silent with failing canaries is isolated impact; every zone
// silent with the same zone's canaries failing is doubt, and nothing is
// decided.
func TestSilentZoneIsImpactUnlessEveryZoneIsSilent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		silent func(string) bool
		want   string
	}{
		{"one zone silent", func(z string) bool { return z == "az1" }, "az1"},
		{"every zone silent", func(string) bool { return true }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.run(60)
			w.server = func(z string) bool { return !tc.silent(z) }
			w.canaryFails = func(z string) bool { return z == "az1" }
			var got string
			var last Assessment
			for range 30 {
				last = w.run(1)
				if last.Isolated != "" && got == "" {
					got = last.Isolated
				}
			}
			if got != tc.want {
				t.Fatalf("isolated %q, want %q; why: %s", got, tc.want, last.Why)
			}
			if tc.want == "" {
				if !last.FailStatic.Active || !strings.Contains(last.Why, "fail static") {
					t.Errorf("no fail static: %+v, why %q", last.FailStatic, last.Why)
				}
				for _, al := range last.Alarms.All() {
					if al.Name == IsolatedAlarmName("az1") && !strings.Contains(al.Reason.String(), "fail static") {
						t.Errorf("isolated alarm reason %q", al.Reason)
					}
				}
			} else if last.FailStatic.Active || !last.Zone("az1").Silent || last.Zone("az2").Silent {
				t.Errorf("fail static %+v, az1 silent %v, az2 silent %v", last.FailStatic, last.Zone("az1").Silent, last.Zone("az2").Silent)
			}
		})
	}
}
