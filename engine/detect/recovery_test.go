package detect

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/grayzone/grayzone/telemetry/observation"
)

// recoveryRun: 3 zones at 30 req/s of customer traffic; from 60 s zone az1
// fails a share loss of its requests until faultEnd. Once az1 is called
// isolated, customers stop going there (the shift) and az1 is seen only
// through its canaries: 4 calls every canaryEvery, each also observed
// server-side (as in the lab). It returns, per second, the assessment.
func recoveryRun(t *testing.T, seed uint64, loss float64, faultEnd, canaryEvery time.Duration, secs int) []Assessment {
	t.Helper()
	e, err := New(Config{Zones: zones3})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	shifted := false
	failing := func(z string, at time.Duration) bool {
		return z == "az1" && at >= 60*time.Second && at < faultEnd && rng.Float64() < loss
	}
	obs := func(at time.Duration, src observation.Source, z string, inst int, fault bool) {
		o := observation.Observation{At: t0.Add(at), Source: src, Zone: z, Instance: fmt.Sprintf("%s-%d", z, inst),
			Operation: "ride", Latency: 5 * time.Millisecond}
		if fault {
			o.Outcome = observation.Fault
		}
		e.Observe(o)
	}
	var out []Assessment
	for sec := 0; sec < secs; sec++ {
		for i := range 30 {
			at := time.Duration(sec)*time.Second + time.Duration(i)*time.Second/30
			z := zones3[i%3]
			if z == "az1" && shifted {
				continue
			}
			obs(at, observation.Server, z, i%2+1, failing(z, at))
		}
		if at := time.Duration(sec) * time.Second; at%canaryEvery == 0 {
			for _, z := range zones3 {
				for j := range 4 {
					f := failing(z, at)
					obs(at+time.Duration(j)*time.Millisecond, observation.Canary, z, j%2+1, f)
					obs(at+time.Duration(j)*time.Millisecond, observation.Server, z, j%2+1, f)
				}
			}
		}
		a := e.Tick(t0.Add(time.Duration(sec+1) * time.Second))
		if a.Isolated == "az1" {
			shifted = true
		}
		out = append(out, a)
	}
	return out
}

// The second failure class: 15 % loss for 20 minutes, canaries every
// 10 s. Over many seeds the zone is never shown recovered while the fault
// runs, and is shown recovered within 10 minutes of its end.
func TestRecoveryHoldsThroughALongFault(t *testing.T) {
	const faultEnd = 60*time.Second + 20*time.Minute
	var delays []time.Duration
	defer func() {
		slices.Sort(delays)
		if len(delays) > 0 {
			t.Logf("recovered after the fault's end: min %s, median %s, max %s (%d seeds)", delays[0], delays[len(delays)/2], delays[len(delays)-1], len(delays))
		}
	}()
	for seed := uint64(1); seed <= 30; seed++ {
		as := recoveryRun(t, seed, 0.15, faultEnd, 10*time.Second, int((faultEnd+12*time.Minute)/time.Second))
		isolated := -1
		for i, a := range as {
			at := time.Duration(i+1) * time.Second
			z := a.Zone("az1")
			if isolated < 0 {
				if a.Isolated == "az1" {
					isolated = i
				}
				continue
			}
			if at < faultEnd && z.Recovered {
				t.Fatalf("seed %d: az1 shown recovered at %s, during the fault (isolated at %d s)", seed, at, isolated+1)
			}
			if at >= faultEnd && z.Recovered {
				delays = append(delays, at-faultEnd)
				if d := at - faultEnd; d > 10*time.Minute {
					t.Errorf("seed %d: recovered only %s after the fault", seed, d)
				}
				break
			}
			if at >= faultEnd+11*time.Minute {
				t.Fatalf("seed %d: not recovered 11 minutes after the fault: %+v", seed, a.Alarms.Slice())
			}
		}
		if isolated < 0 {
			t.Fatalf("seed %d: never isolated", seed)
		}
	}
}

// The statistics of the test: p_× puts the test's decision point at the
// CUSUM's smallest alternative.
func TestRecoveryCrossRate(t *testing.T) {
	f := newDefaultProfile(&Config{Zones: zones3, FaultFloor: 0.001, SlowFloor: 0.01, FalseAlarmRate: 1e-6, RecoveryErrorRate: 1e-3, Resolution: 250 * time.Millisecond})
	for _, d := range dims {
		pb := f.crossRate(d)
		p0, pt := f.p0[d], f.alts[d][0]
		drift := pt*ln(p0/pb) + (1-pt)*ln((1-p0)/(1-pb))
		if drift > 1e-9 || drift < -1e-9 || pb <= pt {
			t.Errorf("%s: p_× %.4f, drift at %.3f = %g", d, pb, pt, drift)
		}
	}
}
func ln(x float64) float64 { return math.Log(x) }

// Back-off: a zone called isolated again after its test passed relapsed; the
// next test needs twice the evidence, against half the rate (not below p_×),
// and the zone is marked relapsing so serve's spacing lets the shift through.
func TestRecoveryBacksOffAfterARelapse(t *testing.T) {
	cfg := Config{Zones: zones3}
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	f := newDefaultProfile(&cfg)
	f.step_ = 1000
	ev := zoneEval{zone: "az1", dim: DimFault, iso: isolation{zRate: 0.3}}
	f.startRecovery(ev)
	r0 := *f.rec["az1"]
	if r0.pb != 0.15 || r0.relapses != 0 {
		t.Fatalf("first test: p_b %.3f relapses %d, want 0.15 and 0", r0.pb, r0.relapses)
	}
	f.startRecovery(ev) // still isolated, test not passed: the same test goes on
	if *f.rec["az1"] != r0 {
		t.Fatal("an isolated call during the test restarted it")
	}
	f.rec["az1"].passed, f.rec["az1"].passedAt = true, f.step_
	f.step_ += 4 * 60 // a minute later it fails again
	a := &assessing{Assessment: Assessment{Zones: []ZoneStatus{{Zone: "az1"}}}}
	f.assessRecovery(a)
	if !a.Zones[0].Relapsing {
		t.Error("zone not marked relapsing a minute after its test passed")
	}
	f.startRecovery(ev)
	// assess calls startRecovery before assessRecovery: at the very tick of
	// the relapse the new test has not passed, yet the zone is relapsing (the
	// runbook reads it at this isolated call, serve's spacing too).
	a = &assessing{Assessment: Assessment{Zones: []ZoneStatus{{Zone: "az1", Impacted: true}}}}
	f.assessRecovery(a)
	if !a.Zones[0].Relapsing {
		t.Error("zone not marked relapsing at the tick of its relapse")
	}
	r1 := f.rec["az1"]
	if r1.relapses != 1 || r1.pb != 0.075 || f.recoveryThreshold(r1) != 2*f.recoveryThreshold(&r0) {
		t.Errorf("after a relapse: p_b %.3f relapses %d threshold %.1f", r1.pb, r1.relapses, f.recoveryThreshold(r1))
	}
	for range 5 {
		f.rec["az1"].passed, f.rec["az1"].passedAt = true, f.step_
		f.startRecovery(ev)
	}
	if r := f.rec["az1"]; r.relapses != maxRelapses || r.pb < f.crossRate(DimFault) {
		t.Errorf("back-off unbounded: relapses %d, p_b %.4f (p_× %.4f)", r.relapses, r.pb, f.crossRate(DimFault))
	}
	// Long after a passed test, a new failure is a new episode.
	f.rec["az1"].passed, f.rec["az1"].passedAt = true, f.step_
	f.step_ += buckets(RelapseWindow, cfg.Resolution) + 1
	f.startRecovery(ev)
	if r := f.rec["az1"]; r.relapses != 0 {
		t.Errorf("a failure %s after recovery counted as a relapse", RelapseWindow)
	}
}

// A resumed shift (the engine never called the zone isolated) is watched by
// a test against p_×: healthy canaries alone do not end it at once.
func TestWatchResumedShift(t *testing.T) {
	e, err := New(Config{Zones: zones3})
	if err != nil {
		t.Fatal(err)
	}
	e.Watch("az1")
	var a Assessment
	for sec := range 20 {
		for _, z := range zones3 {
			e.Observe(observation.Observation{At: t0.Add(time.Duration(sec) * time.Second), Source: observation.Canary,
				Zone: z, Instance: z + "-1", Operation: "home", Latency: time.Millisecond})
		}
		a = e.Tick(t0.Add(time.Duration(sec+1) * time.Second))
	}
	z := a.Zone("az1")
	if !z.UnderTest || z.Recovered {
		t.Fatalf("after 20 clean calls: under test %v, recovered %v (want a test still short of its evidence)", z.UnderTest, z.Recovered)
	}
	if !a.Zone("az2").Recovered {
		t.Error("a zone not under test falls back to its canaries' health")
	}
}

// serve's case from the issue: once shifted, the zone's canaries pass while
// its server-side observations keep failing on both instances. Evidence from
// any source counts: the zone is not shown recovered.
func TestServerSideFailuresBlockRecovery(t *testing.T) {
	e, err := New(Config{Zones: zones3})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	isolated := false
	for sec := range 600 {
		for i := range 30 {
			z := zones3[i%3]
			at := t0.Add(time.Duration(sec)*time.Second + time.Duration(i)*time.Second/30)
			o := observation.Observation{At: at, Source: observation.Server, Zone: z, Instance: fmt.Sprintf("%s-%d", z, i%2+1),
				Operation: "ride", Latency: 5 * time.Millisecond}
			if z == "az1" && sec >= 60 && rng.Float64() < 0.15 {
				o.Outcome = observation.Fault
			}
			if z == "az1" && isolated && i%6 != 0 {
				continue // shifted: only a trickle reaches it server-side
			}
			e.Observe(o)
		}
		for _, z := range zones3 {
			e.Observe(observation.Observation{At: t0.Add(time.Duration(sec) * time.Second), Source: observation.Canary,
				Zone: z, Instance: z + "-1", Operation: "home", Latency: time.Millisecond})
		}
		a := e.Tick(t0.Add(time.Duration(sec+1) * time.Second))
		if a.Isolated == "az1" {
			isolated = true
		}
		if isolated && a.Zone("az1").Recovered {
			t.Fatalf("az1 shown recovered at %d s on passing canaries while its servers still fail", sec+1)
		}
	}
	if !isolated {
		t.Fatal("never isolated")
	}
}
