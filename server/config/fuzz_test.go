package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that no input panics and that every error is one line
// naming the file and a line; and that what parses is usable.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	if ex, err := os.ReadFile(filepath.Join("..", "..", "examples", "serve.yaml")); err == nil {
		f.Add(ex)
	}
	for _, s := range []string{"", "---\n", "a: *x\n", "resources: [{}]\n", "resources: [{name: a, zones: [a, b], frontdoor: {zonal: {a: ':1'}}}]\n",
		"resources:\n - &r {name: a}\n - *r\n", "\xff", "listen: [\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Line < 1 || pe.File != "f.yaml" {
				t.Fatalf("bad error %#v", err)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\n\r") || !strings.HasPrefix(msg, "f.yaml:") {
				t.Fatalf("not one line: %q", msg)
			}
			return
		}
		if len(c.Resources) == 0 {
			t.Fatal("parsed with no resources")
		}
		for _, r := range c.Resources {
			if len(r.Zones) < MinZones || len(r.FrontDoor.Zonal) != len(r.Zones) || len(r.FrontDoor.Targets) == 0 {
				t.Fatalf("incomplete resource parsed: %+v", r)
			}
			if r.Practice.Validate() != nil {
				t.Fatalf("invalid practice config parsed: %+v", r.Practice)
			}
		}
	})
}
