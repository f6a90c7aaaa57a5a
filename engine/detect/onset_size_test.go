package detect

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The onset test's size, computed exactly (docs/detection.md, "Where the
// workshop's delay goes"). Under H_shared z and o have one common rate p,
// unknown; for fixed samples the chance that the per-zone test passes is
//
//	sup_p P_p(Λ(A, B) ≥ c),  A ~ Bin(n_z, p), B ~ Bin(n_o, p)
//
// (the null "o at least as bad as z" is least favourable at p_o = p_z: the
// region "A ≥ a*(B)", a* nondecreasing, only loses probability as o gets
// worse). The same computation with c = Λ_obs is the p-value of Barnard's
// unconditional exact test ordered by Λ: the most powerful use of the whole
// β at a fixed sample, which the onset test uses (shownHealthy, through
// isolationSize in onset.go) when the likelihood ratio alone falls short.

func onsetCeiling(t *testing.T) (Config, float64) {
	t.Helper()
	cfg := Config{Zones: zones3}
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	f := newDefaultProfile(&cfg)
	return cfg, f.alts[DimFault][0]
}

// The per-zone test at ln(1/β) keeps its fixed-sample size within β, and
// well within: at the samples an onset is decided on it spends a third or
// less of it (the numbers docs/detection.md quotes).
func TestIsolationSizeWithinBeta(t *testing.T) {
	cfg, pH := onsetCeiling(t)
	c := math.Log(1 / cfg.IsolationErrorRate)
	for _, n := range []int64{20, 30, 50, 100, 300} {
		s := isolationSize(n, n, c, pH)
		t.Logf("%d requests each: size %.4f (β %.2g)", n, s, cfg.IsolationErrorRate)
		if s > cfg.IsolationErrorRate {
			t.Errorf("%d requests each: size %.4f > β", n, s)
		}
	}
}

// The exact size agrees with simulation at its least favourable rate.
func TestIsolationSizeBySimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	cfg, pH := onsetCeiling(t)
	c := math.Log(1 / cfg.IsolationErrorRate)
	rng := rand.New(rand.NewPCG(5, 6))
	const n, runs = 50, 200000
	want := isolationSize(n, n, c, pH)
	best := 0.0
	for _, p := range []float64{0.03, 0.05, 0.07, 0.09, 0.12} {
		pass := 0
		for range runs {
			if isolationLLR(n, binom(rng, n, p), n, binom(rng, n, p), pH) >= c {
				pass++
			}
		}
		r := float64(pass) / runs
		t.Logf("p %.2f: passed %.5f", p, r)
		best = max(best, r)
	}
	if se := math.Sqrt(want / runs); best > want+4*se || best < want-4*se-0.0003 {
		t.Errorf("simulated size %.5f, computed %.5f", best, want)
	}
}

// The exact test decides on the span's 6th bad request of z against none of
// o's (5 once the span's first is left out), where Λ ≥ ln(1/β) needs the
// 7th; with too few it does not pass, and o at z's rate never.
func TestExactTestNeedsFewerBadRequests(t *testing.T) {
	cfg := Config{Zones: zones3}
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	f := newDefaultProfile(&cfg)
	for _, c := range []struct {
		nz, bz, no, bo int64
		glr, ok        bool
	}{
		{43, 6, 44, 0, false, true}, {46, 6, 47, 0, false, true}, {50, 7, 50, 0, true, true},
		{42, 5, 44, 0, false, false}, {30, 4, 30, 0, false, false}, {50, 10, 50, 6, false, false},
	} {
		h := f.shownHealthy(c.nz, c.bz, c.no, c.bo, DimFault)
		if (h.llr >= f.isolationThreshold()) != c.glr || h.ok != c.ok {
			t.Errorf("%d of %d vs %d of %d: Λ %.2f, exact p %.4f, shown healthy %v; want GLR pass %v, shown healthy %v",
				c.bz, c.nz, c.bo, c.no, h.llr, h.exact, h.ok, c.glr, c.ok)
		}
	}
}

// The baseline check: a zone whose bad requests the baseline does not
// explain is not shown healthy, however clean it looks beside z's burst
// (seed 37 of TestOnsetRegionalIsNeverIsolated: 12 of 60 in z, 2 of 59 in
// o, at a baseline of 0.1 %); one stray bad request is explained.
func TestBaselineCheck(t *testing.T) {
	cfg := Config{Zones: zones3}
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	f := newDefaultProfile(&cfg)
	if h := f.shownHealthy(60, 12, 59, 2, DimFault); h.ok || h.above == 0 || h.above >= cfg.IsolationErrorRate {
		t.Errorf("12 of 60 vs 2 of 59 at baseline %.3g: %+v, want not shown healthy by the baseline check", f.p0[DimFault], h)
	}
	if h := f.shownHealthy(60, 12, 59, 1, DimFault); !h.ok {
		t.Errorf("12 of 60 vs 1 of 59: %+v, want shown healthy", h)
	}
	if a := aboveBaseline(59, 2, 0.001); math.Abs(a-0.001646) > 0.000002 {
		t.Errorf("P(Bin(59, 0.001) ≥ 2) = %.5f, want 0.001646", a)
	}
	if a := aboveBaseline(59, 0, 0.001); a != 1 {
		t.Errorf("P(Bin(59, 0.001) ≥ 0) = %v, want 1", a)
	}
}

func binom(rng *rand.Rand, n int64, p float64) int64 {
	var k int64
	for range n {
		if rng.Float64() < p {
			k++
		}
	}
	return k
}

// The memo of exact sizes returns what isolationSize computes, for keys
// seen before and after it has replaced entries.
func TestSizeMemoIsTheFunction(t *testing.T) {
	var m sizeMemo
	for round := range 2 {
		for nz := int64(20); nz < 32; nz++ { // more keys than the memo holds
			c := 2 + float64(nz%5)/2
			want := isolationSize(nz, 30, c, 0.2)
			if got := m.of(nz, 30, c, 0.2); got != want {
				t.Fatalf("round %d, nz %d: memo %v, function %v", round, nz, got, want)
			}
			if got := m.of(nz, 30, c, 0.2); got != want {
				t.Fatalf("round %d, nz %d, again: memo %v, function %v", round, nz, got, want)
			}
		}
	}
}
