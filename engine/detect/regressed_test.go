package detect

import "testing"

// An aborted gradual return (runbook.RampAborted) counts as a relapse: the
// test starts over, backed off; a test a new isolated call already restarted
// (and counted) is left alone.
func TestRegressedBacksOffLikeARelapse(t *testing.T) {
	e, err := New(Config{Zones: zones3})
	if err != nil {
		t.Fatal(err)
	}
	f := e.det.(*defaultProfile)
	f.step_ = 1000
	f.startRecovery(zoneEval{zone: "az1", dim: DimFault, iso: isolation{zRate: 0.3}})
	r0 := *f.rec["az1"]
	f.rec["az1"].s, f.rec["az1"].passed, f.rec["az1"].passedAt = 10, true, f.step_ // passed: the ramp runs
	f.step_ += 40
	e.Regressed("az1")
	r1 := *f.rec["az1"]
	if r1.relapses != 1 || r1.pb != r0.pb/2 || r1.s != 0 || r1.passed || f.recoveryThreshold(&r1) != 2*f.recoveryThreshold(&r0) {
		t.Fatalf("after an abort: %+v, want relapses 1, p_b %.3f, S 0, not passed", r1, r0.pb/2)
	}
	e.Regressed("az1") // the same abort told twice, or after a relapse call restarted it
	if *f.rec["az1"] != r1 {
		t.Fatalf("a test not passed since it started over was backed off again: %+v", *f.rec["az1"])
	}
	// A zone the engine never tested (a restarted serve mid-ramp): the strictest test, backed off once.
	e.Regressed("az2")
	if r := f.rec["az2"]; r == nil || r.relapses != 1 || r.pb != f.crossRate(DimFault) {
		t.Fatalf("untested zone after an abort: %+v", r)
	}
}
