package layering

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// testsMayUse are packages in-package tests may import beyond the rules: the
// throwaway PostgreSQL cluster the store's and the replicas' tests run
// against, the AWS stand-in the service's AWS tests call, and the runbook
// that drives an adapter through a real sequence.
// External test packages (package x_test) are not checked: they are
// end-to-end tests that may assemble the whole program, as the dashboard's
// browser test does with the lab.
var testsMayUse = []string{"lab/database", "lab/awsstandin", "engine/runbook"}

func TestLayering(t *testing.T) {
	// .Deps is every package a package depends on, however indirectly (what
	// go list -deps prints for it); .TestImports are its in-package tests'
	// direct imports.
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}} | {{join .TestImports \" \"}}", Module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkg := strings.TrimPrefix(f[0], Module)
		bar := slices.Index(f, "|")
		deps, tests := f[1:bar], f[bar+1:]
		seen++
		for _, v := range Violations(pkg, deps) {
			t.Error(v)
		}
		tests = slices.DeleteFunc(tests, func(imp string) bool {
			return slices.Contains(testsMayUse, strings.TrimPrefix(imp, Module))
		})
		for _, v := range Violations(pkg, tests) {
			t.Error("in-package tests: " + v)
		}
	}
	if seen < 50 {
		t.Fatalf("checked only %d packages; is go list's output what this test expects?", seen)
	}
}

// The rules catch what a direct-imports check would miss: a production
// package that reaches the lab through another package.
func TestViolationsCatchTransitiveDependencies(t *testing.T) {
	deps := []string{"fmt", Module + "report", Module + "engine/detect", Module + "lab/scenario", Module + "telemetry/record"}
	got := Violations("server/dashboard", deps)
	if len(got) != 1 || !strings.Contains(got[0], "server/dashboard depends on lab/scenario") {
		t.Errorf("server/dashboard with lab/scenario among its dependencies: %q, want one violation naming it", got)
	}
	for _, tc := range []struct {
		pkg  string
		deps []string
		bad  int
	}{
		{"report", []string{Module + "benchmark"}, 1},
		{"replay", []string{Module + "cli"}, 1},
		{"telemetry/otlp", []string{Module + "engine/detect", Module + "server/config"}, 2},
		{"actuator/haproxy", []string{Module + "engine/shift"}, 0},
		{"actuator/haproxy", []string{Module + "engine/runbook"}, 1},
		{"lab/scenario", []string{Module + "lab/fault", Module + "cli"}, 0}, // the lab may use anything
		{"cli", []string{Module + "lab"}, 0},
		{"labyrinth", []string{Module + "lab"}, 1}, // a prefix is a folder, not a string
	} {
		if got := Violations(tc.pkg, tc.deps); len(got) != tc.bad {
			t.Errorf("Violations(%s, %v) = %q, want %d", tc.pkg, tc.deps, got, tc.bad)
		}
	}
}
