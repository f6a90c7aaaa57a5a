// Package layering holds the dependency rules of docs/architecture.md, so
// that the tree keeps reading like the diagram, and its test enforces them on
// every package's transitive dependencies (go list -deps). No production
// package (everything but lab/, benchmark/, cli/ and cmd/) depends on the lab,
// the benchmarks or the command line, however indirectly; the production core
// (engine, telemetry, actuator, internal) never depends on the server.
package layering

import "strings"

// Module is the import path every rule is relative to.
const Module = "github.com/grayzone/grayzone/"

// notProduction are the trees that run only on a developer's machine (the
// lab, the benchmarks) or assemble everything (the command line, main).
var notProduction = []string{"lab", "benchmark", "cli", "cmd"}

// rules: a package under the key may not depend on packages under any of the
// listed prefixes, on top of notProduction.
var rules = map[string][]string{
	"engine":    {"server"},
	"telemetry": {"server", "engine"},
	// Adapters speak the shift model (engine/shift: what a zonal shift is),
	// never the detector, the runbook or the controller.
	"actuator": {"server", "engine/detect", "engine/alarm", "engine/composite", "engine/outlier", "engine/runbook", "engine/autoshift"},
	"internal": {"server", "engine", "telemetry", "actuator"},
	// Notifiers know grayzone's events, not where they come from.
	"notify": {"server", "engine", "telemetry", "actuator"},
}

// under reports whether pkg is tree or inside it.
func under(pkg, tree string) bool { return pkg == tree || strings.HasPrefix(pkg, tree+"/") }

// Production reports whether pkg (relative to Module) ships in grayzone serve
// or the tools an operator runs against it.
func Production(pkg string) bool {
	for _, t := range notProduction {
		if under(pkg, t) {
			return false
		}
	}
	return true
}

// Violations lists the rules pkg breaks by depending on deps (full import
// paths, transitive: go list's .Deps), one line each.
func Violations(pkg string, deps []string) []string {
	var banned []string
	if Production(pkg) {
		banned = append(banned, notProduction...)
	}
	for from, b := range rules {
		if under(pkg, from) {
			banned = append(banned, b...)
		}
	}
	var out []string
	for _, d := range deps {
		rel, ok := strings.CutPrefix(d, Module)
		if !ok {
			continue
		}
		for _, b := range banned {
			if under(rel, b) {
				out = append(out, pkg+" depends on "+rel+": "+strings.SplitN(pkg, "/", 2)[0]+"/ may not depend on "+b+"/ (docs/architecture.md)")
				break
			}
		}
	}
	return out
}
