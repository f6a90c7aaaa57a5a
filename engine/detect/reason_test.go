package detect

import (
	"regexp"
	"testing"
)

// Reasons are formatted when read: each alarm of a zone failing (az1: all
// its requests fail for 20 s, so it is impacted, an outlier, with both
// instances contributing, isolated and then under its recovery test) reads as
// the texts that were formatted on every tick before.
func TestReasonsReadAsText(t *testing.T) {
	tr := newTraffic(t, ProfileDefault)
	tr.bad = func(z string, _ int, sec int) (bool, bool) { return z == "az1" && sec >= 120 && sec < 140, false }
	as := tr.run(0, 140)
	a := as[len(as)-1]
	if a.Isolated != "az1" {
		t.Fatalf("az1 not isolated: %s", a.Why)
	}
	want := map[string]string{
		"regional-impact":                     `^1 zone\(s\) with a sequential test at h/2 or above in the last 1m0s \(2 make it regional\)$`,
		"az1-availability-impact":             `^CUSUM \d+\.\d vs h 15\.\d \((server|canary), baseline 0\.001\)$`,
		"az2-latency-impact":                  `^CUSUM 0\.0 vs h \d+\.\d \(server, baseline 0\.01\)$`,
		"az1-availability-outlier":            `^100\.0% of \d+ vs 0\.0% of \d+ in the other zones over 2s$`,
		"az1-availability-multiple-instances": `^2 of 2 instances contributing \[az1-1 az1-2\] \(need 2\)$`,
		"az2-availability-multiple-instances": `^0 of 2 instances contributing \[\] \(need 2\)$`,
		"az1-isolated-impact":                 `^impact AND outlier AND multiple instances AND others shown healthy AND NOT regional-impact$`,
		"az1-recovered":                       `^sequential test 0\.0 of \d+\.\d \(β 1e-03×0 relapses\) that the availability rate is back to 0\.001 rather than \d\.\d+; zone impacted$`,
	}
	seen := map[string]bool{}
	for _, al := range a.Alarms.All() {
		re, ok := want[al.Name]
		if !ok {
			continue
		}
		seen[al.Name] = true
		if got := al.Reason.String(); !regexp.MustCompile(re).MatchString(got) {
			t.Errorf("%s: reason %q, want %s", al.Name, got, re)
		}
		if b, _ := al.Reason.MarshalText(); string(b) != al.Reason.String() {
			t.Errorf("%s: MarshalText %q", al.Name, b)
		}
	}
	for n := range want {
		if !seen[n] {
			t.Errorf("no alarm %s", n)
		}
	}
}
