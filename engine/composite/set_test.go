package composite

import (
	"reflect"
	"strings"
	"testing"

	"github.com/grayzone/grayzone/engine/alarm"
)

func knownSet(names ...string) func(string) bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return func(n string) bool { return m[n] }
}

func TestSetAdd(t *testing.T) {
	var s Set
	if err := s.Add("impact", "ALARM(a)"); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, rule, err string }{
		{"impact", "ALARM(b)", `composite alarm "impact": already defined`},
		{"", "ALARM(b)", `composite alarm: name is empty`},
		{"bad\nname", "ALARM(b)", `composite alarm "bad\nname": name contains a control character`},
		{"broken", "ALARM(a) AND", `composite alarm "broken": composite rule: col 13: expected an expression, got end of rule`},
		{"huge", "ALARM(" + strings.Repeat("a", 10240) + ")", `composite alarm "huge": rule is 10247 bytes, longer than CloudWatch's limit of 10240`},
	}
	for _, tt := range tests {
		err := s.Add(tt.name, tt.rule)
		if err == nil || err.Error() != tt.err {
			t.Errorf("Add(%q, %q)\n got %v\nwant %s", tt.name, tt.rule, err, tt.err)
		}
	}
	if err := s.Add(strings.Repeat("n", 256), "TRUE"); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("long name: %v", err)
	}
	if got := s.Names(); !reflect.DeepEqual(got, []string{"impact"}) {
		t.Errorf("Names() = %q", got)
	}
	if s.Rule("impact") == nil || s.Rule("nope") != nil {
		t.Error("Rule lookup")
	}
}

func TestSetCheck(t *testing.T) {
	type def struct{ name, rule string }
	tests := []struct {
		name  string
		defs  []def
		known func(string) bool
		err   string
	}{
		{"ok", []def{{"top", "ALARM(mid) AND ALARM(m1)"}, {"mid", "ALARM(m1) OR ALARM(m2)"}}, knownSet("m1", "m2"), ""},
		{"constants only, nil known", []def{{"c", "TRUE"}}, nil, ""},
		{"unknown metric", []def{{"top", "ALARM(m1) AND OK(m3)"}}, knownSet("m1"), `composite alarm "top": rule references unknown alarm "m3"`},
		{"nil known", []def{{"top", "ALARM(m1)"}}, nil, `composite alarm "top": rule references unknown alarm "m1"`},
		{"unknown in AT_LEAST", []def{{"top", "AT_LEAST(1, ALARM, (m1, zz))"}}, knownSet("m1"), `composite alarm "top": rule references unknown alarm "zz"`},
		{"clash", []def{{"m1", "TRUE"}}, knownSet("m1"), `composite alarm "m1": name is also a metric alarm`},
		{"self", []def{{"a", "ALARM(a) OR ALARM(m1)"}}, knownSet("m1"), `composite alarm cycle: a -> a`},
		{"two", []def{{"a", "ALARM(b)"}, {"b", "NOT ALARM(a)"}}, nil, `composite alarm cycle: a -> b -> a`},
		{"three behind a tail", []def{{"x", "ALARM(a)"}, {"a", "ALARM(b)"}, {"b", "ALARM(m1) AND ALARM(c)"}, {"c", "OK(a)"}}, knownSet("m1"),
			`composite alarm cycle: a -> b -> c -> a`},
		{"diamond is not a cycle", []def{{"top", "ALARM(l) AND ALARM(r)"}, {"l", "ALARM(base)"}, {"r", "ALARM(base)"}, {"base", "ALARM(m1)"}}, knownSet("m1"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Set
			for _, d := range tt.defs {
				if err := s.Add(d.name, d.rule); err != nil {
					t.Fatal(err)
				}
			}
			err := s.Check(tt.known)
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.err != "" && (err == nil || err.Error() != tt.err):
				t.Errorf("got %v\nwant %s", err, tt.err)
			}
		})
	}
}

func TestSetEvaluate(t *testing.T) {
	var s Set
	// Added dependants first: evaluation must still go bottom-up.
	for _, d := range [][2]string{
		{"isolated-impact", "ALARM(zone-impact) AND NOT ALARM(regional-impact)"},
		{"zone-impact", "AT_LEAST(2, ALARM, (faults, latency, canary))"},
		{"regional-impact", "ALARM(other-zone) AND ALARM(zone-impact)"},
	} {
		if err := s.Add(d[0], d[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Check(knownSet("faults", "latency", "canary", "other-zone")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		metrics map[string]alarm.State
		want    map[string]alarm.State
	}{
		{
			map[string]alarm.State{"faults": alarm.Alarm, "latency": alarm.Alarm, "canary": alarm.OK, "other-zone": alarm.OK},
			map[string]alarm.State{"zone-impact": alarm.Alarm, "regional-impact": alarm.OK, "isolated-impact": alarm.Alarm},
		},
		{
			map[string]alarm.State{"faults": alarm.Alarm, "latency": alarm.Alarm, "canary": alarm.OK, "other-zone": alarm.Alarm},
			map[string]alarm.State{"zone-impact": alarm.Alarm, "regional-impact": alarm.Alarm, "isolated-impact": alarm.OK},
		},
		{
			map[string]alarm.State{"faults": alarm.Alarm},
			map[string]alarm.State{"zone-impact": alarm.OK, "regional-impact": alarm.OK, "isolated-impact": alarm.OK},
		},
	}
	for _, tt := range tests {
		got := s.Evaluate(tt.metrics)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Evaluate(%v)\n got %v\nwant %v", tt.metrics, got, tt.want)
		}
		ex := s.Explain(tt.metrics)
		for name, st := range tt.want {
			if ex[name].Value != (st == alarm.Alarm) {
				t.Errorf("Explain[%s].Value = %v, want %s", name, ex[name].Value, st)
			}
		}
	}
	ex := s.Explain(tests[0].metrics)
	if tc := ex["isolated-impact"].TrueChildren(); len(tc) != 2 || tc[0].Text != "ALARM(zone-impact)" {
		t.Errorf("isolated-impact true children: %+v", tc)
	}
}

func TestSetCompositeShadowsMetric(t *testing.T) {
	var s Set
	_ = s.Add("x", "FALSE")
	_ = s.Add("y", "ALARM(x)")
	got := s.Evaluate(map[string]alarm.State{"x": alarm.Alarm})
	if got["y"] != alarm.OK {
		t.Errorf("y = %s: the composite x (OK) must take precedence over a metric alarm named x", got["y"])
	}
}

func TestSetEvaluateCycleWithoutCheck(t *testing.T) {
	var s Set
	_ = s.Add("a", "NOT ALARM(b)")
	_ = s.Add("b", "NOT ALARM(a)")
	// Deterministic, no panic: a is visited first, its reference to b leads
	// to b, whose reference back to a reads as unknown (not ALARM), so b is
	// ALARM and a is OK.
	for range 3 {
		got := s.Evaluate(nil)
		if want := map[string]alarm.State{"a": alarm.OK, "b": alarm.Alarm}; !reflect.DeepEqual(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestEmptySet(t *testing.T) {
	var s Set
	if err := s.Check(nil); err != nil {
		t.Error(err)
	}
	if got := s.Evaluate(nil); len(got) != 0 {
		t.Errorf("Evaluate on empty set: %v", got)
	}
}
