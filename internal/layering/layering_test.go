package layering

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/grayzone/grayzone/"

// rules: packages under the key may not import packages under any of the
// listed prefixes. In-package test files count too; external test packages
// (package x_test) do not: they are end-to-end tests that may assemble the
// whole program, as the dashboard's browser test does with the lab.
var rules = map[string][]string{
	"engine/":    {"server/", "lab", "cli", "benchmark", "cmd/"},
	"telemetry/": {"server/", "lab", "cli", "benchmark", "cmd/", "engine/"},
	// Adapters speak the shift model (engine/shift: what a zonal shift is),
	// never the detector, the runbook or the controller.
	"actuator":  {"server/", "lab", "cli", "benchmark", "cmd/", "engine/detect", "engine/alarm", "engine/composite", "engine/outlier", "engine/runbook", "engine/autoshift"},
	"internal/": {"server/", "lab", "cli", "benchmark", "cmd/", "engine/", "telemetry/", "actuator"},
	// Notifiers know grayzone's events, not where they come from.
	"notify":  {"server/", "lab", "cli", "benchmark", "cmd/", "engine/", "telemetry/", "actuator"},
	"server/": {"lab/workload", "lab/dblink", "lab/database", "lab/loadgen", "lab/fault", "lab/sim", "lab/instancegroup", "cli", "benchmark", "cmd/"},
}

// testsMayUse are packages in-package tests may use beyond the rules: the
// throwaway PostgreSQL cluster the store's and the replicas' tests run
// against, and the runbook that drives an adapter through a real sequence.
var testsMayUse = []string{"lab/database", "engine/runbook"}

func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}} | {{join .TestImports \" \"}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkg := strings.TrimPrefix(f[0], module)
		for from, banned := range rules {
			if !strings.HasPrefix(pkg, from) {
				continue
			}
			seen++
			inTests := false
			for _, imp := range f[1:] {
				if imp == "|" {
					inTests = true
					continue
				}
				rel, ok := strings.CutPrefix(imp, module)
				if !ok || inTests && slices.Contains(testsMayUse, rel) {
					continue
				}
				for _, b := range banned {
					if rel == b || strings.HasPrefix(rel, strings.TrimSuffix(b, "/")+"/") || rel == strings.TrimSuffix(b, "/") {
						t.Errorf("%s imports %s: %s/ may not depend on %s (docs/architecture.md)", pkg, rel, strings.TrimSuffix(from, "/"), b)
					}
				}
			}
		}
	}
	if seen < 10 {
		t.Fatalf("checked only %d packages; is go list's output what this test expects?", seen)
	}
}
