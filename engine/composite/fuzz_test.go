package composite

import (
	"hash/fnv"
	"reflect"
	"testing"

	"github.com/grayzone/grayzone/engine/alarm"
)

// FuzzParse checks that Parse never panics and that a parsed rule's
// canonical form parses back to the same tree, names and truth values.
func FuzzParse(f *testing.F) {
	for _, tt := range validRules {
		f.Add(tt.in)
	}
	for _, tt := range invalidRules {
		f.Add(tt.in)
	}
	for _, s := range []string{
		`AT_LEAST(1, ALARM, ("a\\", "b\"", c))`,
		`NOT NOT NOT (TRUE OR FALSE) AND (FALSE)`,
		`ALARM("\\\"")`,
		`ALARM(a)AND NOT(OK(b)OR INSUFFICIENT_DATA(c))`,
		`AT_LEAST(3%,NOT INSUFFICIENT_DATA,(x))`,
		"ALARM(\u00a0)",
		"ALARM(\"\u200b\")",
		"ALARM(٣)",
		"AT_LEAST(٣, ALARM, (a))",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r, err := Parse(in)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Parse(%q) error %T, want *Error", in, err)
			}
			return
		}
		canon := r.String()
		r2, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its canonical form %q fails: %v", in, canon, err)
		}
		if got := r2.String(); got != canon {
			t.Fatalf("canonical form not stable for %q:\n%q\n%q", in, canon, got)
		}
		if !reflect.DeepEqual(r.root, r2.root) {
			t.Fatalf("canonical form of %q parses to a different tree", in)
		}
		if !reflect.DeepEqual(r.Names(), r2.Names()) {
			t.Fatalf("names differ for %q: %q vs %q", in, r.Names(), r2.Names())
		}
		// A few deterministic state assignments: all the same, then hashed.
		all := []alarm.State{alarm.OK, alarm.Alarm, alarm.InsufficientData, ""}
		for k := range 6 {
			st := func(name string) alarm.State {
				if k < len(all) {
					return all[k]
				}
				h := fnv.New32a()
				h.Write([]byte{byte(k)})
				h.Write([]byte(name))
				return all[h.Sum32()%uint32(len(all))]
			}
			if v := r.Eval(st); v != r2.Eval(st) || v != r.Explain(st).Value {
				t.Fatalf("Eval/Explain disagree for %q (assignment %d)", in, k)
			}
		}
	})
}
