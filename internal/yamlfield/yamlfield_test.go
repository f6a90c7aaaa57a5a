package yamlfield

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// decode runs check on the top-level value of src and returns the first
// problem, rendered, or "" if there is none.
func decode(t *testing.T, src string, check func(d *Decoder, root Field)) string {
	t.Helper()
	d := &Decoder{File: "f.yaml"}
	root, second, err := d.Document([]byte(src), "empty file")
	if err != nil {
		return err.Error()
	}
	check(d, root)
	if second != nil {
		d.ErrAt(second.Line, second.Column, "", "one document only")
	}
	if err := d.Err(); err != nil {
		return err.Error()
	}
	return ""
}

func TestDocument(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"", "f.yaml:1: empty file"},
		{"# nothing\n", "f.yaml:1: empty file"},
		{"~\n", "f.yaml:1: empty file"},
		{"a: [1\n", "f.yaml:2: invalid YAML: did not find expected ',' or ']'"},
		{"a: 1\nb: *x\n", "f.yaml:2: invalid YAML: unknown anchor 'x' referenced"},
		{"a: 1\nb: \x01\n", "f.yaml:2: invalid YAML: control characters are not allowed"},
		{"a: 1\n---\nb: 2\n", "f.yaml:2: one document only"}, // at its ---
		{"a: 1\n---\nb: [\n", "f.yaml:4: invalid YAML: did not find expected node content"},
		{"a: 1\n", ""},
	} {
		got := decode(t, c.src, func(d *Decoder, root Field) {})
		if got != c.want {
			t.Errorf("%q: got %q, want %q", c.src, got, c.want)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{File: "f.yaml", Line: 3, Path: "a.b", Msg: "wrong"}
	if got := e.Error(); got != "f.yaml:3: a.b: wrong" {
		t.Errorf("got %q", got)
	}
	e.Path = ""
	if got := e.Error(); got != "f.yaml:3: wrong" {
		t.Errorf("got %q", got)
	}
	d := &Decoder{File: "f.yaml"}
	if d.Err() != nil {
		t.Error("Err with no problems is not nil")
	}
}

// TestOrder: problems are reported in file order whatever order the checks
// ran in, and a missing key sorts after what its mapping does contain.
func TestOrder(t *testing.T) {
	src := "a:\n  x: 1\n  y: nope\nb: 2\n"
	got := decode(t, src, func(d *Decoder, root Field) {
		m, _ := d.Mapping(root, nil)
		b, _ := m.Get("b")
		d.Errorf(b, "late check")
		a, _ := m.Get("a")
		am, _ := d.Mapping(a, []string{"x", "y", "z"})
		d.Require(am, "z")
		y, _ := am.Get("y")
		d.Integer(y)
	})
	if want := "f.yaml:3: a.y: must be an integer, got string \"nope\""; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	got = decode(t, src, func(d *Decoder, root Field) {
		m, _ := d.Mapping(root, nil)
		b, _ := m.Get("b")
		d.Errorf(b, "late check")
		a, _ := m.Get("a")
		am, _ := d.Mapping(a, nil)
		d.Require(am, "z")
	})
	if want := "f.yaml:1: a.z: required"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestMapping(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"a: 1\nb: 2\na: 3\n", "f.yaml:3: a: duplicate key (first given at line 1)"},
		{"a: 1\nc: 2\n", "f.yaml:2: c: unknown key (expected one of a, b)"},
		{"a: 1\n[x]: 2\n", "f.yaml:2: keys must be plain words, got a list as a key"},
		{"a: 1\n\"x y\": 2\n", `f.yaml:2: ["x y"]: unknown key (expected one of a, b)`},
		{"- 1\n", "f.yaml:1: must be a mapping, got a list"},
		{"b: 1\n", "f.yaml:1: a: required"},
		{"a: 1\n", ""},
	} {
		got := decode(t, c.src, func(d *Decoder, root Field) {
			if m, ok := d.Mapping(root, []string{"a", "b"}); ok {
				d.Require(m, "a")
			}
		})
		if got != c.want {
			t.Errorf("%q: got %q, want %q", c.src, got, c.want)
		}
	}
}

func TestAliasesPointAtUse(t *testing.T) {
	src := "a: &v 1\nb:\n  c: *v\n"
	var fields []Field
	got := decode(t, src, func(d *Decoder, root Field) {
		m, _ := d.Mapping(root, nil)
		b, _ := m.Get("b")
		bm, _ := d.Mapping(b, nil)
		fields = bm.Fields
		c, _ := bm.Get("c")
		d.Str(c)
	})
	if want := "f.yaml:3: b.c: must be a string, got integer 1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if len(fields) != 1 || fields[0].Key != "c" || fields[0].Path != "b.c" || fields[0].Val.Value != "1" {
		t.Errorf("fields %+v", fields)
	}
}

func TestList(t *testing.T) {
	var items []Field
	got := decode(t, "l: [a, 2]\n", func(d *Decoder, root Field) {
		m, _ := d.Mapping(root, nil)
		l, _ := m.Get("l")
		items, _ = d.List(l, "a list of names")
		for _, it := range items {
			d.Str(it)
		}
	})
	if want := "f.yaml:1: l[1]: must be a string, got integer 2"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if len(items) != 2 || items[0].Path != "l[0]" || items[0].Val.Value != "a" {
		t.Errorf("items %+v", items)
	}
	got = decode(t, "l: x\n", func(d *Decoder, root Field) {
		m, _ := d.Mapping(root, nil)
		l, _ := m.Get("l")
		d.List(l, "a list of names")
	})
	if want := `f.yaml:1: l: must be a list of names, got string "x"`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// value decodes "v: VAL" with read and returns the problem, if any.
func value(t *testing.T, val string, read func(d *Decoder, f Field)) string {
	t.Helper()
	return decode(t, "v: "+val+"\n", func(d *Decoder, root Field) {
		m, _ := d.Mapping(root, nil)
		f, _ := m.Get("v")
		read(d, f)
	})
}

func TestScalars(t *testing.T) {
	str := func(d *Decoder, f Field) { d.Str(f) }
	integer := func(d *Decoder, f Field) { d.Integer(f) }
	intIn := func(d *Decoder, f Field) { d.IntIn(f, 1, 10) }
	number := func(d *Decoder, f Field) { d.Number(f) }
	boolean := func(d *Decoder, f Field) { d.Boolean(f) }
	dur := func(d *Decoder, f Field) { d.Duration(f) }
	durIn := func(d *Decoder, f Field) { d.DurationIn(f, time.Minute, 2*time.Hour) }
	durMin := func(d *Decoder, f Field) { d.DurationIn(f, time.Hour, 0) }
	for _, c := range []struct {
		name string
		read func(*Decoder, Field)
		val  string
		want string
	}{
		{"str", str, "abc", ""},
		{"str", str, "1", "must be a string, got integer 1"},
		{"str", str, "~", "must be a string, got null"},
		{"str", str, "{}", "must be a string, got a mapping"},
		{"integer", integer, "-3", ""},
		{"integer", integer, "1.5", "must be an integer, got number 1.5"},
		{"integer", integer, "99999999999999999999", "must be an integer, got number 99999999999999999999"},
		{"intIn", intIn, "10", ""},
		{"intIn", intIn, "11", "11 is out of range (1..10)"},
		{"number", number, "1e3", ""},
		{"number", number, ".nan", ".nan is not a finite number"},
		{"number", number, "true", "must be a number, got boolean true"},
		{"boolean", boolean, "false", ""},
		{"boolean", boolean, "yes", `must be true or false, got string "yes"`},
		{"duration", dur, "90s", ""},
		{"duration", dur, "0", ""},
		{"duration", dur, "60", "60 is not a valid duration (Go syntax with a unit, e.g. 90s, 2m, 1h30m)"},
		{"duration", dur, "[]", "must be a duration (e.g. 90s, 2m), got a list"},
		{"durationIn", durIn, "2h", ""},
		{"durationIn", durIn, "59s", "59s is out of range (1m..2h)"},
		{"durationIn", durMin, "30m", "30m is out of range (must be >= 1h)"},
		{"tagged", str, "!custom x", "must be a string, got value x tagged \"!custom\""},
	} {
		got := value(t, c.val, c.read)
		if c.want != "" {
			c.want = "f.yaml:1: v: " + c.want
		}
		if got != c.want {
			t.Errorf("%s %q: got %q, want %q", c.name, c.val, got, c.want)
		}
	}
}

func TestCollapseSpace(t *testing.T) {
	for _, collapse := range []bool{false, true} {
		d := &Decoder{File: "f.yaml", CollapseSpace: collapse}
		d.ErrAt(1, 1, "", "%v", errors.New("a  b\nc"))
		msg := d.Err().(*Error).Msg
		if want := map[bool]string{false: "a  b\nc", true: "a b c"}[collapse]; msg != want {
			t.Errorf("CollapseSpace %v: %q, want %q", collapse, msg, want)
		}
	}
}

func TestShowAndPaths(t *testing.T) {
	long := strings.Repeat("é", 45)
	for _, c := range []struct{ got, want string }{
		{Show("us-east-1a"), "us-east-1a"},
		{Show("a b"), `"a b"`},
		{Show("x\ny"), `"x\ny"`},
		{Show(long), `"` + strings.Repeat("é", 40) + `..."`},
		{Quote("plain"), `"plain"`},
		{Join("", "a"), "a"},
		{Join("a", "b"), "a.b"},
		{Join("a", "b c"), `a["b c"]`},
		{Index("a.b", 2), "a.b[2]"},
		{Describe(nil), "nothing"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
