package config

import (
	"strings"

	"github.com/grayzone/grayzone/internal/bearer"
)

// parseScopedToken reads one token: "name:secret", "name:secret:scopes"
// (scopes comma-separated: ingest, operate, read) or a bare secret (named
// unnamed). A token without scopes has them all, as every token had before
// scopes existed; serve logs a notice naming such tokens.
func parseScopedToken(s, unnamed string) (Token, string) {
	t := Token{Name: unnamed, Secret: s}
	if name, rest, ok := strings.Cut(s, ":"); ok {
		if !tokenNameRe.MatchString(name) {
			return t, "invalid token name before the colon (names use only A-Z a-z 0-9 . _ - and are at most 63 characters)"
		}
		t = Token{Name: name, Secret: rest}
		if secret, scopes, ok := strings.Cut(rest, ":"); ok {
			sc, err := bearer.ParseScopes(scopes)
			if err != nil {
				return t, "after the second colon: " + err.Error()
			}
			t.Secret, t.Scopes = secret, sc
		}
	}
	if msg := tokenProblem(t.Secret); msg != "" {
		return t, msg
	}
	return t, ""
}

// TokensWith returns the tokens that allow scope s.
func TokensWith(tokens []Token, s bearer.Scope) []Token {
	var out []Token
	for _, t := range tokens {
		if t.Allows(s) {
			out = append(out, t)
		}
	}
	return out
}

// UnscopedTokens names the tokens given without scopes (they may do
// everything), for the notice serve logs at start.
func UnscopedTokens(tokens []Token) []string {
	var out []string
	for _, t := range tokens {
		if t.Unscoped() {
			out = append(out, t.Name)
		}
	}
	return out
}
