package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
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
