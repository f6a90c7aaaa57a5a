// Package engine_test holds the checks that keep engine/ the deterministic
// core docs/architecture.md describes: time-stamped inputs in, decisions
// out; no I/O, no goroutines, no clock.
package engine_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// No package under engine/ may reach for the network, processes or
// databases, directly or through what it imports.
func TestEngineHasNoIO(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, bad := range []string{"net/http", "os/exec", "database/sql", "net"} {
		for _, dep := range strings.Fields(string(out)) {
			if dep == bad {
				t.Errorf("a package under engine/ depends on %s", bad)
			}
		}
	}
}

// No non-test file under engine/ starts a goroutine or reads the wall
// clock (time.Now, time.Since, time.Until, timers and tickers): time comes
// in as an argument, and concurrency belongs to the caller.
func TestEngineStartsNoGoroutineAndReadsNoClock(t *testing.T) {
	clockFuncs := map[string]bool{"Now": true, "Since": true, "Until": true, "After": true, "AfterFunc": true,
		"NewTimer": true, "NewTicker": true, "Tick": true, "Sleep": true}
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		timePkg := "" // the name the file imports "time" under
		for _, imp := range f.Imports {
			if imp.Path.Value == `"time"` {
				timePkg = "time"
				if imp.Name != nil {
					timePkg = imp.Name.Name
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: starts a goroutine", fset.Position(n.Pos()))
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok && timePkg != "" && id.Name == timePkg && clockFuncs[n.Sel.Name] {
					t.Errorf("%s: reads the clock (time.%s)", fset.Position(n.Pos()), n.Sel.Name)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 {
		t.Fatalf("parsed only %d files under engine/", files)
	}
}
