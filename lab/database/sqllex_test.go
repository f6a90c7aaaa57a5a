package database

import (
	"testing"
)

func TestTemplateMatchesPgxSimpleProtocolText(t *testing.T) {
	// What pgx's simple protocol sends: arguments inlined with spaces around.
	cases := []struct {
		sql  string
		tmpl template
		args []literal
		ok   bool
	}{
		{
			sql:  `INSERT INTO rides (zone, instance) VALUES ( 'use2-az1' ,  'use2-az1-1' ) RETURNING id`,
			tmpl: tmplRide,
			args: []literal{{text: "use2-az1"}, {text: "use2-az1-1"}},
			ok:   true,
		},
		{
			sql:  "insert  into Rides(zone,instance)\n values ('o''brien', 'x') -- trailing\n returning ID",
			tmpl: tmplRide,
			args: []literal{{text: "o'brien"}, {text: "x"}},
			ok:   true,
		},
		{
			sql:  `INSERT INTO payments (zone, instance, cents) VALUES ( 'a' ,  'b' ,  -250 ) RETURNING id`,
			tmpl: tmplPayment,
			args: []literal{{text: "a"}, {text: "b"}, {text: "-250", num: true}},
			ok:   true,
		},
		{
			sql:  `INSERT INTO payments (zone, instance, cents) VALUES ( null ,  'b' ,  1 ) RETURNING id`,
			tmpl: tmplPayment,
			args: []literal{{null: true}, {text: "b"}, {text: "1", num: true}},
			ok:   true,
		},
		{sql: `INSERT INTO rides (zone, instance) VALUES ('a', 'b')`, tmpl: tmplRide},
		{sql: `INSERT INTO rides (zone, instance) VALUES ('a', 'b') RETURNING id, zone`, tmpl: tmplRide},
		{sql: `INSERT INTO rides (zone, instance) VALUES ('a', 'b' || 'c') RETURNING id`, tmpl: tmplRide},
		{sql: `INSERT INTO "Rides" (zone, instance) VALUES ('a', 'b') RETURNING id`, tmpl: tmplRide},
	}
	for _, c := range cases {
		toks, err := lex(c.sql)
		if err != nil {
			t.Fatalf("lex(%q): %v", c.sql, err)
		}
		stmts := splitStatements(toks)
		if len(stmts) != 1 {
			t.Fatalf("lex(%q): %d statements", c.sql, len(stmts))
		}
		args, ok := c.tmpl.match(stmts[0])
		if ok != c.ok {
			t.Errorf("match(%q) = %v, want %v", c.sql, ok, c.ok)
			continue
		}
		for i := range c.args {
			if args[i] != c.args[i] {
				t.Errorf("match(%q) arg %d = %+v, want %+v", c.sql, i+1, args[i], c.args[i])
			}
		}
	}
}

func TestLexCommentsAndEmpty(t *testing.T) {
	for _, sql := range []string{"", "-- ping", " ; ;", "/* a /* nested */ comment */", "-- x\n/* y */;"} {
		toks, err := lex(sql)
		if err != nil {
			t.Fatalf("lex(%q): %v", sql, err)
		}
		if n := len(splitStatements(toks)); n != 0 {
			t.Errorf("lex(%q): %d statements, want 0", sql, n)
		}
	}
	for _, sql := range []string{"'open", "/* open", `"open`} {
		if _, err := lex(sql); err == nil {
			t.Errorf("lex(%q): no error", sql)
		}
	}
}

func TestSchemaTemplates(t *testing.T) {
	if len(tmplCreate) != 2 || tmplCreate["rides"].toks == nil || tmplCreate["payments"].toks == nil {
		t.Fatalf("schema templates: %v", tmplCreate)
	}
}
