// Package bearer is grayzone's one credential model: bearer tokens with
// scopes, read from the tokens file serve's API uses, checked the same way
// on every port that takes a token (the API, /metrics, OTLP over HTTP and
// gRPC, EMF over HTTP). Like the OpenTelemetry Collector's bearertokenauth,
// a request carries "Authorization: Bearer <token>" (gRPC: the
// "authorization" metadata); a token is compared in constant time against
// every configured one, and what it may do is its scopes.
package bearer

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
)

// Scope is a set of things a token may do.
type Scope uint8

// The scopes. A token's line in the tokens file names them after a second
// colon ("app:SECRET:ingest"); a line without scopes has all of them, as
// every token did before scopes existed.
const (
	// Ingest: post telemetry (OTLP, EMF, POST /v1/observations).
	Ingest Scope = 1 << iota
	// Operate: change things (start, update, cancel shifts; approve decisions).
	Operate
	// Read: GET the API and /metrics when they are not open.
	Read

	All = Ingest | Operate | Read
)

var scopeNames = []struct {
	s    Scope
	name string
}{{Ingest, "ingest"}, {Operate, "operate"}, {Read, "read"}}

// Names lists the scope names, for error messages.
const Names = "ingest, operate, read"

// ParseScopes reads a comma-separated list of scope names.
func ParseScopes(s string) (Scope, error) {
	var out Scope
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		found := false
		for _, n := range scopeNames {
			if part == n.name {
				out |= n.s
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown scope %q (scopes: %s)", part, Names)
		}
	}
	return out, nil
}

// String is the comma-separated names ("ingest,read").
func (s Scope) String() string {
	var out []string
	for _, n := range scopeNames {
		if s&n.s != 0 {
			out = append(out, n.name)
		}
	}
	return strings.Join(out, ",")
}

// Token is one bearer token, the name it acts under and its scopes.
// Formatting a Token shows only its name, so that a logged or printed Token
// never leaks its secret.
type Token struct {
	Name   string
	Secret string
	// Scopes are what the token may do; zero is an unscoped token (a line
	// written before scopes existed), which may do everything.
	Scopes Scope
}

func (t Token) String() string   { return t.Name }
func (t Token) GoString() string { return fmt.Sprintf("bearer.Token{Name: %q}", t.Name) }

// Unscoped reports whether the token was given without scopes.
func (t Token) Unscoped() bool { return t.Scopes == 0 }

// Allows reports whether the token may do what scope s covers.
func (t Token) Allows(s Scope) bool { return t.Scopes == 0 || t.Scopes&s == s }

// FromHeader extracts the token of an "Authorization: Bearer <token>" value.
func FromHeader(auth string) (string, bool) {
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// Match compares secret against every token in constant time and returns
// the one it matches. Hashing first makes the comparison length-independent
// too, and the loop does not stop at a match so timing does not tell which
// token matched. An empty configured secret never matches.
func Match(secret string, tokens []Token) (Token, bool) {
	got := sha256.Sum256([]byte(secret))
	var hit Token
	matched := 0
	for _, t := range tokens {
		if t.Secret == "" {
			continue
		}
		want := sha256.Sum256([]byte(t.Secret))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			hit, matched = t, 1
		}
	}
	return hit, matched == 1
}

// Outcome is what checking a request's credential found.
type Outcome int

// The outcomes of Check.
const (
	OK        Outcome = iota
	Missing           // no bearer token: 401 / Unauthenticated
	Unknown           // a token that matches none: 401 / Unauthenticated
	Forbidden         // a valid token without the scope: 403 / PermissionDenied
)

// Check is the whole decision for one request: the Authorization value it
// carried, the tokens in force, and the scope the request needs. The
// message says what is wrong without showing the token.
func Check(auth string, tokens []Token, need Scope) (Token, Outcome, string) {
	secret, ok := FromHeader(auth)
	if !ok {
		return Token{}, Missing, "missing bearer token (send Authorization: Bearer <token>)"
	}
	t, ok := Match(secret, tokens)
	if !ok {
		return Token{}, Unknown, "bearer token not accepted"
	}
	if !t.Allows(need) {
		return t, Forbidden, fmt.Sprintf("token %s has scopes %s; this needs %s", t.Name, t.Scopes, need)
	}
	return t, OK, ""
}
