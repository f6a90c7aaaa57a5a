package composite

import (
	"reflect"
	"strings"
	"testing"

	"github.com/grayzone/grayzone/engine/alarm"
)

// validRules maps a rule to its canonical form.
var validRules = []struct{ in, canon string }{
	{"TRUE", "TRUE"},
	{"FALSE", "FALSE"},
	{"ALARM(cpu)", "ALARM(cpu)"},
	{`ALARM("cpu")`, "ALARM(cpu)"},
	{"OK(cpu)", "OK(cpu)"},
	{"INSUFFICIENT_DATA(cpu)", "INSUFFICIENT_DATA(cpu)"},
	{"  ALARM( cpu )\t", "ALARM(cpu)"},
	{"ALARM(a)AND(ALARM(b))", "ALARM(a) AND ALARM(b)"},
	{"ALARM(a)\nOR\nALARM(b)", "ALARM(a) OR ALARM(b)"},
	{"ALARM(a) OR ALARM(b) AND ALARM(c)", "ALARM(a) OR ALARM(b) AND ALARM(c)"},
	{"(ALARM(a) OR ALARM(b)) AND ALARM(c)", "(ALARM(a) OR ALARM(b)) AND ALARM(c)"},
	{"(ALARM(a) AND ALARM(b)) OR ALARM(c)", "ALARM(a) AND ALARM(b) OR ALARM(c)"},
	{"ALARM(a) AND (ALARM(b) AND ALARM(c))", "ALARM(a) AND (ALARM(b) AND ALARM(c))"},
	{"(ALARM(a) AND ALARM(b)) AND ALARM(c)", "(ALARM(a) AND ALARM(b)) AND ALARM(c)"},
	{"ALARM(a) OR (ALARM(b) OR ALARM(c))", "ALARM(a) OR (ALARM(b) OR ALARM(c))"},
	{"((((ALARM(a)))))", "ALARM(a)"},
	{"NOT ALARM(a) AND ALARM(b)", "NOT ALARM(a) AND ALARM(b)"},
	{"NOT (ALARM(a) AND ALARM(b))", "NOT (ALARM(a) AND ALARM(b))"},
	{"NOT (ALARM(a) OR ALARM(b))", "NOT (ALARM(a) OR ALARM(b))"},
	{"NOT NOT ALARM(a)", "NOT NOT ALARM(a)"},
	{"NOT(ALARM(a))", "NOT ALARM(a)"},
	{"NOT TRUE", "NOT TRUE"},
	{`ALARM("my alarm")`, `ALARM("my alarm")`},
	{`ALARM("say \"hi\"")`, `ALARM("say \"hi\"")`},
	{`ALARM("back\\slash")`, `ALARM("back\\slash")`},
	{`ALARM("lone\slash")`, `ALARM("lone\\slash")`},
	{`ALARM("é-zone")`, `ALARM(é-zone)`},
	{"ALARM(arn:aws:cloudwatch:us-east-1:123456789012:alarm:cpu-high)", "ALARM(arn:aws:cloudwatch:us-east-1:123456789012:alarm:cpu-high)"},
	{"ALARM(svc/use1-az1.faults_v2)", "ALARM(svc/use1-az1.faults_v2)"},
	{"ALARM(AND)", `ALARM("AND")`},
	{`ALARM("ALARM") OR OK(OK)`, `ALARM("ALARM") OR OK("OK")`},
	{"ALARM(123)", "ALARM(123)"},
	{"AT_LEAST(2, ALARM, (a, b, c))", "AT_LEAST(2, ALARM, (a, b, c))"},
	{"AT_LEAST(2,ALARM,(a,b,c))", "AT_LEAST(2, ALARM, (a, b, c))"},
	{"AT_LEAST(60%, NOT OK, (a, b, c))", "AT_LEAST(60%, NOT OK, (a, b, c))"},
	{"AT_LEAST(60 %, NOT OK, (a, b, c))", "AT_LEAST(60%, NOT OK, (a, b, c))"},
	{"AT_LEAST(02, INSUFFICIENT_DATA, (a, b))", "AT_LEAST(2, INSUFFICIENT_DATA, (a, b))"},
	{"AT_LEAST(100%, NOT INSUFFICIENT_DATA, (a))", "AT_LEAST(100%, NOT INSUFFICIENT_DATA, (a))"},
	{"AT_LEAST(1, NOT ALARM, (\"x y\", AND, 7))", `AT_LEAST(1, NOT ALARM, ("x y", "AND", 7))`},
	{"NOT AT_LEAST(1, OK, (a)) AND TRUE", "NOT AT_LEAST(1, OK, (a)) AND TRUE"},
	{"ALARM(a) AND ALARM(a)", "ALARM(a) AND ALARM(a)"},
	{"(ALARM(z1-faults) OR ALARM(z1-latency)) AND NOT ALARM(regional) AND AT_LEAST(2, ALARM, (z1-i1, z1-i2, z1-i3))",
		"(ALARM(z1-faults) OR ALARM(z1-latency)) AND NOT ALARM(regional) AND AT_LEAST(2, ALARM, (z1-i1, z1-i2, z1-i3))"},
}

var invalidRules = []struct{ in, err string }{
	{"", `col 1: expected an expression, got end of rule`},
	{"   ", `col 4: expected an expression, got end of rule`},
	{"ALARM(cpu-high AND ALARM(mem))", `col 16: expected ")" after alarm name, got "AND"`},
	{"ALARM(my alarm)", `col 10: expected ")" after alarm name, got "alarm"`},
	{"alarm(a)", `col 1: expected an expression, got "alarm" (keywords are upper case)`},
	{"ALARM(a) and ALARM(b)", `col 10: expected AND, OR or end of rule, got "and" (keywords are upper case)`},
	{"(ALARM(a) or ALARM(b))", `col 11: expected ")" to close "(" at col 1, got "or" (keywords are upper case)`},
	{"ALARM()", `col 7: expected alarm name, got ")"`},
	{"ALARM", `col 6: expected "(" after ALARM, got end of rule`},
	{"OK cpu", `col 4: expected "(" after OK, got "cpu"`},
	{"ALARM(a", `col 8: expected ")" after alarm name, got end of rule`},
	{"(ALARM(a)", `col 10: expected ")" to close "(" at col 1, got end of rule`},
	{"ALARM(a))", `col 9: expected AND, OR or end of rule, got ")"`},
	{"ALARM(a) AND", `col 13: expected an expression, got end of rule`},
	{"ALARM(a) OR OR ALARM(b)", `col 13: expected an expression, got "OR"`},
	{"AND ALARM(a)", `col 1: expected an expression, got "AND"`},
	{"NOT", `col 4: expected an expression, got end of rule`},
	{"TRUE FALSE", `col 6: expected AND, OR or end of rule, got "FALSE"`},
	{"()", `col 2: expected an expression, got ")"`},
	{"cpu", `col 1: expected an expression, got "cpu" (alarm names go inside ALARM(), OK() or INSUFFICIENT_DATA())`},
	{`"cpu"`, `col 1: expected an expression, got quoted name "cpu" (alarm names go inside ALARM(), OK() or INSUFFICIENT_DATA())`},
	{`ALARM("a`, `col 7: unterminated quoted name`},
	{`ALARM("a\")`, `col 7: unterminated quoted name`},
	{`ALARM("")`, `col 7: empty alarm name`},
	{"ALARM(\"a\tb\")", `col 9: control character '\t' in quoted name`},
	{"ALARM(\xff)", `col 7: invalid UTF-8`},
	{"ALARM(\"\xff\")", `col 8: invalid UTF-8`},
	{"ALARM(a) & ALARM(b)", `col 10: unexpected character '&'`},
	{"ALARM(a) || ALARM(b)", `col 10: unexpected character '|'`},
	{`ALARM("é") AND x`, `col 16: expected an expression, got "x" (alarm names go inside ALARM(), OK() or INSUFFICIENT_DATA())`},
	{"AT_LEAST", `col 9: expected "(" after AT_LEAST, got end of rule`},
	{"AT_LEAST(0, ALARM, (a))", `col 10: AT_LEAST count 0 must be at least 1`},
	{"AT_LEAST(4, ALARM, (a, b, c))", `col 10: AT_LEAST count 4 is more than the 3 alarms listed`},
	{"AT_LEAST(0%, ALARM, (a))", `col 10: AT_LEAST percentage 0% must be between 1% and 100%`},
	{"AT_LEAST(101%, ALARM, (a))", `col 10: AT_LEAST percentage 101% must be between 1% and 100%`},
	{"AT_LEAST(x, ALARM, (a))", `col 10: expected a count or a percentage such as 2 or 60%, got "x"`},
	{"AT_LEAST(1.5, ALARM, (a))", `col 10: expected a count or a percentage such as 2 or 60%, got "1.5"`},
	{"AT_LEAST(99999999999999999999, ALARM, (a))", `col 10: expected a count or a percentage such as 2 or 60%, got "99999999999999999999"`},
	{"AT_LEAST(%, ALARM, (a))", `col 10: expected a count or a percentage such as 2 or 60%, got "%"`},
	{"AT_LEAST(2 ALARM, (a, b))", `col 12: expected "," after AT_LEAST threshold, got "ALARM"`},
	{"AT_LEAST(2, ALRM, (a, b))", `col 13: expected ALARM, OK or INSUFFICIENT_DATA, optionally after NOT, got "ALRM"`},
	{"AT_LEAST(2, NOT, (a, b))", `col 16: expected ALARM, OK or INSUFFICIENT_DATA, optionally after NOT, got ","`},
	{"AT_LEAST(2, ALARM (a, b))", `col 19: expected "," after AT_LEAST state, got "("`},
	{"AT_LEAST(2, ALARM, a, b)", `col 20: expected "(" to open the AT_LEAST alarm list, got "a"`},
	{"AT_LEAST(2, ALARM, (a b))", `col 23: expected "," or ")" in the AT_LEAST alarm list, got "b"`},
	{"AT_LEAST(1, ALARM, ())", `col 21: expected alarm name, got ")"`},
	{"AT_LEAST(1, ALARM, (a,))", `col 23: expected alarm name, got ")"`},
	{"AT_LEAST(2, ALARM, (a, b)", `col 26: expected ")" to close AT_LEAST, got end of rule`},
	{strings.Repeat("(", 101) + "TRUE" + strings.Repeat(")", 101), `col 101: nested more than 100 deep`},
	{strings.Repeat("NOT ", 101) + "TRUE", `col 401: nested more than 100 deep`},
}

func TestParseValid(t *testing.T) {
	for _, tt := range validRules {
		r, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got := r.String(); got != tt.canon {
			t.Errorf("Parse(%q).String()\n got %s\nwant %s", tt.in, got, tt.canon)
		}
		r2, err := Parse(r.String())
		if err != nil || r2.String() != r.String() || !reflect.DeepEqual(r.root, r2.root) {
			t.Errorf("canonical form of %q does not parse back to the same tree: %v", tt.in, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range invalidRules {
		_, err := Parse(tt.in)
		want := "composite rule: " + tt.err
		if err == nil || err.Error() != want {
			t.Errorf("Parse(%q)\n got %v\nwant %s", tt.in, err, want)
		}
	}
}

func TestPrecedence(t *testing.T) {
	// Each rule against the equivalent fully parenthesised one, under every
	// assignment of ALARM/OK to a, b, c.
	tests := []struct{ rule, explicit string }{
		{"ALARM(a) OR ALARM(b) AND ALARM(c)", "ALARM(a) OR (ALARM(b) AND ALARM(c))"},
		{"ALARM(a) AND ALARM(b) OR ALARM(c)", "(ALARM(a) AND ALARM(b)) OR ALARM(c)"},
		{"NOT ALARM(a) AND ALARM(b)", "(NOT ALARM(a)) AND ALARM(b)"},
		{"NOT ALARM(a) OR ALARM(b) AND NOT ALARM(c)", "(NOT ALARM(a)) OR (ALARM(b) AND (NOT ALARM(c)))"},
		{"NOT NOT ALARM(a) OR FALSE", "(NOT (NOT ALARM(a))) OR FALSE"},
	}
	for _, tt := range tests {
		r1, err1 := Parse(tt.rule)
		r2, err2 := Parse(tt.explicit)
		if err1 != nil || err2 != nil {
			t.Fatalf("%v %v", err1, err2)
		}
		for mask := range 8 {
			st := func(n string) alarm.State {
				if mask&(1<<(n[0]-'a')) != 0 {
					return alarm.Alarm
				}
				return alarm.OK
			}
			if r1.Eval(st) != r2.Eval(st) {
				t.Errorf("%s and %s differ for mask %03b", tt.rule, tt.explicit, mask)
			}
			if r1.Explain(st).Value != r1.Eval(st) {
				t.Errorf("%s: Explain and Eval differ for mask %03b", tt.rule, mask)
			}
		}
	}
}

func states(m map[string]alarm.State) func(string) alarm.State {
	return func(n string) alarm.State { return m[n] }
}

func TestEval(t *testing.T) {
	s := states(map[string]alarm.State{"a": alarm.Alarm, "b": alarm.OK, "c": alarm.InsufficientData, "d": alarm.Alarm})
	tests := []struct {
		rule string
		want bool
	}{
		{"TRUE", true},
		{"FALSE", false},
		{"ALARM(a)", true},
		{"ALARM(b)", false},
		{"OK(b)", true},
		{"INSUFFICIENT_DATA(c)", true},
		{"INSUFFICIENT_DATA(a)", false},
		{"ALARM(unknown) OR OK(unknown) OR INSUFFICIENT_DATA(unknown)", false},
		{"NOT ALARM(unknown)", true},
		{"ALARM(a) AND OK(b)", true},
		{"ALARM(a) AND ALARM(b)", false},
		{"ALARM(b) OR ALARM(d)", true},
		{"NOT (ALARM(a) AND ALARM(d))", false},
		{"AT_LEAST(2, ALARM, (a, b, d))", true},
		{"AT_LEAST(3, ALARM, (a, b, d))", false},
		{"AT_LEAST(2, NOT OK, (a, b, c))", true}, // a and c are not OK
		{"AT_LEAST(1, NOT OK, (b))", false},
		{"AT_LEAST(1, INSUFFICIENT_DATA, (a, b, c))", true},
		{"AT_LEAST(2, NOT ALARM, (a, b, unknown))", true}, // unknown is not ALARM
		{"AT_LEAST(60%, ALARM, (a, b, d))", true},         // 2 of 3 ≥ 60%
		{"AT_LEAST(67%, ALARM, (a, b, d))", false},        // 2 of 3 < 67%
		{"AT_LEAST(66%, ALARM, (a, b, d))", true},
		{"AT_LEAST(50%, ALARM, (a, b, c, d))", true}, // exactly half
		{"AT_LEAST(51%, ALARM, (a, b, c, d))", false},
		{"AT_LEAST(100%, ALARM, (a, d))", true},
		{"AT_LEAST(1%, ALARM, (b, c))", false},
		{"AT_LEAST(2, ALARM, (a, a))", true}, // entries count, duplicates included
	}
	for _, tt := range tests {
		r, err := Parse(tt.rule)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.rule, err)
		}
		if got := r.Eval(s); got != tt.want {
			t.Errorf("Eval(%s) = %v, want %v", tt.rule, got, tt.want)
		}
		if got := r.Explain(s).Value; got != tt.want {
			t.Errorf("Explain(%s).Value = %v, want %v", tt.rule, got, tt.want)
		}
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		rule string
		want []string
	}{
		{"TRUE", nil},
		{"ALARM(b) OR OK(a) AND NOT ALARM(b)", []string{"b", "a"}},
		{`AT_LEAST(1, OK, (c, "b", c)) OR ALARM(a) OR ALARM("x y")`, []string{"c", "b", "a", "x y"}},
	}
	for _, tt := range tests {
		r, err := Parse(tt.rule)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Names(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Names(%s) = %q, want %q", tt.rule, got, tt.want)
		}
	}
}

func TestExplain(t *testing.T) {
	r, err := Parse("(ALARM(z1-faults) OR ALARM(z1-latency)) AND NOT ALARM(regional) AND AT_LEAST(60%, NOT OK, (i1, i2, i3))")
	if err != nil {
		t.Fatal(err)
	}
	s := states(map[string]alarm.State{"z1-faults": alarm.OK, "z1-latency": alarm.Alarm, "regional": alarm.OK,
		"i1": alarm.Alarm, "i2": alarm.InsufficientData, "i3": alarm.OK})
	e := r.Explain(s)
	if !e.Value || e.Detail != "3 of 3 true" || len(e.Children) != 3 {
		t.Fatalf("root: %+v", e)
	}
	or := e.Children[0]
	if or.Text != "ALARM(z1-faults) OR ALARM(z1-latency)" || !or.Value {
		t.Errorf("or: %+v", or)
	}
	if tc := or.TrueChildren(); len(tc) != 1 || tc[0].Text != "ALARM(z1-latency)" || tc[0].Detail != "z1-latency is ALARM" {
		t.Errorf("true children of the OR: %+v", tc)
	}
	not := e.Children[1]
	if not.Text != "NOT ALARM(regional)" || !not.Value || len(not.Children) != 1 || not.Children[0].Value {
		t.Errorf("not: %+v", not)
	}
	al := e.Children[2]
	if al.Detail != "2 of 3 in NOT OK, need 60%" || !al.Value || len(al.Children) != 3 {
		t.Errorf("at least: %+v", al)
	}
	if c := al.Children[2]; c.Text != "NOT OK(i3)" || c.Value || c.Detail != "i3 is OK" {
		t.Errorf("at least child: %+v", c)
	}
	want := "ALARM(a) AND NOT ALARM(b) = false [1 of 2 true] {ALARM(a) = true [a is ALARM]; NOT ALARM(b) = false {ALARM(b) = true [b is ALARM]}}"
	r, _ = Parse("ALARM(a) AND NOT ALARM(b)")
	if got := r.Explain(states(map[string]alarm.State{"a": alarm.Alarm, "b": alarm.Alarm})).String(); got != want {
		t.Errorf("String()\n got %s\nwant %s", got, want)
	}
	r, _ = Parse("OK(gone)")
	if got := r.Explain(states(nil)).String(); got != "OK(gone) = false [gone is unknown]" {
		t.Errorf("unknown alarm: %s", got)
	}
}

func TestErrorType(t *testing.T) {
	_, err := Parse("ALARM(a) AND")
	pe, ok := err.(*Error)
	if !ok || pe.Col != 13 {
		t.Errorf("error %T %v, want *Error at col 13", err, err)
	}
}
