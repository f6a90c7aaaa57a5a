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
	engineFiles(t, fset, func(_ string, f *ast.File) {
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
	})
	if files < 10 {
		t.Fatalf("parsed only %d files under engine/", files)
	}
}

// No non-test file under engine/ holds a lock across a call that may do
// I/O: a call given a context (the Store's, say) made between a Lock() and
// the next Unlock(), in source order, in the function itself or in a
// function of its package it calls meanwhile (which is assumed to run with
// the lock still held until it releases it). engine/shift's manager releases
// its lock around its Store's writes; this keeps it so.
func TestEngineHoldsNoLockAcrossIO(t *testing.T) {
	fset := token.NewFileSet()
	pkgs := map[string]map[string]*ast.FuncDecl{} // directory → function or method name → declaration
	engineFiles(t, fset, func(path string, f *ast.File) {
		dir := filepath.Dir(path)
		if pkgs[dir] == nil {
			pkgs[dir] = map[string]*ast.FuncDecl{}
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Body != nil {
				pkgs[dir][fn.Name.Name] = fn
			}
		}
	})
	for _, funcs := range pkgs {
		// exposes: called with the lock held, the function makes a call
		// given a context before it releases the lock.
		memo := map[string]bool{}
		var exposes func(name string) bool
		walk := func(fn *ast.FuncDecl, held bool, report func(*ast.CallExpr)) {
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.DeferStmt, *ast.FuncLit:
					return false // a deferred Unlock releases at the end; a literal runs elsewhere
				case *ast.CallExpr:
					name := ""
					switch f := n.Fun.(type) {
					case *ast.SelectorExpr:
						name = f.Sel.Name
					case *ast.Ident:
						name = f.Name
					}
					if len(n.Args) == 0 {
						switch name {
						case "Lock", "RLock":
							held = true
						case "Unlock", "RUnlock":
							held = false
						}
					}
					if held && (takesContext(n) || (funcs[name] != nil && exposes(name))) {
						report(n)
					}
				}
				return true
			})
		}
		exposes = func(name string) bool {
			if v, ok := memo[name]; ok {
				return v
			}
			memo[name] = false // recursion: assume not, until shown
			found := false
			walk(funcs[name], true, func(*ast.CallExpr) { found = true })
			memo[name] = found
			return found
		}
		for _, fn := range funcs {
			walk(fn, false, func(c *ast.CallExpr) {
				t.Errorf("%s: a call that may do I/O while %s holds a lock", fset.Position(c.Pos()), fn.Name.Name)
			})
		}
	}
}

// takesContext reports whether a call is given a context: context.X(...)
// or an identifier named ctx among its arguments.
func takesContext(c *ast.CallExpr) bool {
	for _, a := range c.Args {
		switch a := a.(type) {
		case *ast.Ident:
			if a.Name == "ctx" {
				return true
			}
		case *ast.CallExpr:
			if sel, ok := a.Fun.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "context" {
					return true
				}
			}
		}
	}
	return false
}

// engineFiles parses every non-test Go file under engine/ and hands it to f.
func engineFiles(t *testing.T, fset *token.FileSet, f func(path string, file *ast.File)) {
	t.Helper()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		file, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		f(path, file)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
