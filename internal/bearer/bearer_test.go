package bearer

import (
	"fmt"
	"strings"
	"testing"
)

func TestScopesAndCheck(t *testing.T) {
	s, err := ParseScopes("read, ingest")
	if err != nil || s != Read|Ingest || s.String() != "ingest,read" {
		t.Fatalf("ParseScopes = %v, %v", s, err)
	}
	if _, err := ParseScopes("admin"); err == nil || !strings.Contains(err.Error(), "ingest, operate, read") {
		t.Fatalf("unknown scope: %v", err)
	}
	tokens := []Token{{Name: "app", Secret: "app-secret-0123456789", Scopes: Ingest}, {Name: "legacy", Secret: "legacy-secret-0123456789"}}
	for _, tc := range []struct {
		auth string
		need Scope
		want Outcome
		name string
	}{
		{"", Ingest, Missing, ""},
		{"Basic app-secret-0123456789", Ingest, Missing, ""},
		{"Bearer nope-0123456789abcdef", Ingest, Unknown, ""},
		{"Bearer app-secret-0123456789", Ingest, OK, "app"},
		{"bearer  app-secret-0123456789 ", Ingest, OK, "app"},
		{"Bearer app-secret-0123456789", Operate, Forbidden, "app"},
		{"Bearer legacy-secret-0123456789", Operate, OK, "legacy"}, // unscoped: every scope
		{"Bearer legacy-secret-0123456789", Read, OK, "legacy"},
	} {
		tok, got, why := Check(tc.auth, tokens, tc.need)
		if got != tc.want || tok.Name != tc.name || (got != OK) == (why == "") {
			t.Errorf("%q needing %s: %v %q %q", tc.auth, tc.need, got, tok.Name, why)
		}
		if strings.Contains(why, "secret") {
			t.Errorf("the reason shows the token: %s", why)
		}
	}
	if out := fmt.Sprintf("%v %+v %#v", tokens[0], tokens[0], tokens[0]); strings.Contains(out, "secret") {
		t.Errorf("a Token prints its secret: %s", out)
	}
	if _, ok := Match("x", []Token{{Name: "empty"}}); ok {
		t.Error("an empty configured secret matched")
	}
}
