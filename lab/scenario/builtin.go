package scenario

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// The shipped scenarios, so `grayzone lab` runs without any file around.
//
//go:embed builtin/*.yaml
var builtinFS embed.FS

// DefaultName is the built-in scenario `grayzone lab` runs when none is named.
const DefaultName = "workshop-db-packet-loss"

// BuiltinNames lists the built-in scenarios by name (no .yaml), sorted.
func BuiltinNames() []string {
	entries, err := fs.ReadDir(builtinFS, "builtin")
	if err != nil {
		return nil // cannot happen: the directory is embedded
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// Builtin parses the built-in scenario called name ("smoke" or "smoke.yaml");
// its File is "builtin:NAME.yaml".
func Builtin(name string) (*Scenario, error) {
	n := strings.TrimSuffix(name, ".yaml")
	if !slices.Contains(BuiltinNames(), n) {
		return nil, fmt.Errorf("unknown built-in scenario %q (builtin scenarios: %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	data, err := builtinFS.ReadFile(path.Join("builtin", n+".yaml"))
	if err != nil {
		return nil, err
	}
	return Parse("builtin:"+n+".yaml", data)
}

// Open reads a scenario from a file, or, when no such file exists, from the
// built-in scenario of that name: a file on disk always wins, so a local
// copy can shadow a built-in one. (It is not called Load because the type
// Load, the scenario's traffic, already has that name.)
func Open(pathOrName string) (*Scenario, error) {
	data, err := os.ReadFile(pathOrName)
	if err == nil {
		return Parse(pathOrName, data)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if n := strings.TrimSuffix(pathOrName, ".yaml"); slices.Contains(BuiltinNames(), n) {
		return Builtin(n)
	}
	return nil, fmt.Errorf("open %s: no such file (builtin scenarios: %s)", pathOrName, strings.Join(BuiltinNames(), ", "))
}
