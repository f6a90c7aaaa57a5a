package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLabSimWritesContractReport(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r.json")
	code, stdout, stderr := run(t, "lab", "--scenario", "workshop-db-packet-loss", "--mode", "sim", "--baseline", "--report", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var r map[string]any
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"scenario", "mode", "seed", "detector", "duration_s", "requests", "faults", "detections", "shifts", "control_plane", "baseline", "expect"} {
		if _, ok := r[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	if r["mode"] != "sim" || r["detector"] != "default" || r["seed"] != 7.0 {
		t.Errorf("mode/detector/seed = %v/%v/%v", r["mode"], r["detector"], r["seed"])
	}
	for _, want := range []string{"detected", "shifted    away from use2-az1", "without it (--baseline)", "expect     met"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
}

func TestLabExitCodes(t *testing.T) {
	unmet := writeFile(t, "unmet.yaml", `version: 1
name: unmet
duration: 2m
topology: {zones: [a, b, c], instances_per_zone: 2}
load: {rps: 20}
faults: [{at: 10s, kind: blackhole, zone: a}]
expect: {shift: none}
`)
	bad := writeFile(t, "bad.yaml", `version: 1
name: bad
duration: 2m
topology: {zones: [a, b, c], instances_per_zone: 2}
load: {rps: 20}
faults:
  - {at: 10s, kind: blackhole, zone: d}
`)
	for _, tc := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"expect not met", []string{"lab", "--mode", "sim", "--scenario", unmet}, 1, "expectations not met"},
		{"bad scenario", []string{"lab", "--mode", "sim", "--scenario", bad}, 2, "bad.yaml:7: faults[0].zone"},
		{"missing scenario", []string{"lab", "--scenario", "nope.yaml"}, 2, "nope.yaml"},
		{"bad mode", []string{"lab", "--mode", "fast"}, 2, "--mode \"fast\""},
		{"bad detector", []string{"lab", "--mode", "sim", "--detector", "magic"}, 2, "--detector \"magic\""},
		{"unknown flag", []string{"lab", "--frobnicate"}, 2, "unknown flag"},
		{"stray argument", []string{"lab", "extra"}, 2, "unknown command"},
		{"help", []string{"lab", "--help"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			if tc.err != "" && !strings.Contains(stderr, tc.err) {
				t.Errorf("stderr %q lacks %q", stderr, tc.err)
			}
			if tc.code == 2 && strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("usage error is not one line: %q", stderr)
			}
		})
	}
}

// Not a terminal (a buffer, like a pipe): plain lines of at most 100
// characters, then the summary with the outcome first; --quiet: the summary alone.
func TestLabOutputPipedAndQuiet(t *testing.T) {
	code, stdout, stderr := run(t, "lab", "--scenario", "smoke", "--mode", "sim", "--baseline")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, l := range strings.Split(stdout, "\n") {
		if n := len([]rune(l)); n > 100 {
			t.Errorf("line of %d characters: %q", n, l)
		}
	}
	if n := strings.Count(stdout, "/100s | "); n != 10 {
		t.Errorf("%d status lines, want one every 10 s of the 100 s scenario:\n%s", n, stdout)
	}
	// About 3,000 requests: the counts carry a thousands separator.
	outcome := regexp.MustCompile(`\n\n(mitigated: \d+ of \d,\d{3} customer requests failed \(\d+\.\d\d %\); unmitigated: \d+ of \d,\d{3} failed \(\d+\.\d\d %\)\nsmoke \(sim mode)`)
	m := outcome.FindStringSubmatchIndex(stdout)
	if m == nil {
		t.Fatalf("stdout lacks the outcome after a blank line, before the timeline %s:\n%s", outcome, stdout)
	}
	code, quiet, _ := run(t, "lab", "--scenario", "smoke", "--mode", "sim", "--baseline", "--quiet")
	if summary := stdout[m[2]:]; code != 0 || quiet != summary {
		t.Errorf("--quiet printed:\n%s\nwant the summary alone:\n%s", quiet, summary)
	}
}
