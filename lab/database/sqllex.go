package database

import (
	"fmt"
	"strconv"
	"strings"
)

// A tiny SQL lexer for the embedded store. It does not parse SQL; it lets the
// store recognise the app's fixed statements whatever their spacing, case and
// comments, with pgx's inlined literals in place of $n.

type tokKind uint8

const (
	tokIdent  tokKind = iota + 1 // keyword or identifier, lower-cased unless quoted
	tokString                    // '...' literal, text unescaped
	tokNumber                    // numeric literal
	tokParam                     // $n, in templates only
	tokPunct                     // one character: ( ) , ; - etc.
)

type token struct {
	kind tokKind
	text string
}

// lex splits sql into tokens, dropping whitespace and comments.
func lex(sql string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(sql) {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case strings.HasPrefix(sql[i:], "--"):
			end := strings.IndexByte(sql[i:], '\n')
			if end < 0 {
				i = len(sql)
			} else {
				i += end + 1
			}
		case strings.HasPrefix(sql[i:], "/*"):
			// PostgreSQL block comments nest.
			depth, j := 0, i
			for j < len(sql) {
				if strings.HasPrefix(sql[j:], "/*") {
					depth++
					j += 2
				} else if strings.HasPrefix(sql[j:], "*/") {
					depth--
					j += 2
					if depth == 0 {
						break
					}
				} else {
					j++
				}
			}
			if depth != 0 {
				return nil, fmt.Errorf("unterminated /* comment")
			}
			i = j
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(sql) {
					return nil, fmt.Errorf("unterminated quoted string")
				}
				if sql[j] == '\'' {
					if j+1 < len(sql) && sql[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					j++
					break
				}
				b.WriteByte(sql[j])
				j++
			}
			toks = append(toks, token{tokString, b.String()})
			i = j
		case c == '"':
			end := strings.IndexByte(sql[i+1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("unterminated quoted identifier")
			}
			toks = append(toks, token{tokIdent, sql[i+1 : i+1+end]})
			i += end + 2
		case c == '$' && i+1 < len(sql) && isDigit(sql[i+1]):
			j := i + 1
			for j < len(sql) && isDigit(sql[j]) {
				j++
			}
			toks = append(toks, token{tokParam, sql[i+1 : j]})
			i = j
		case isDigit(c):
			j := i
			for j < len(sql) && (isDigit(sql[j]) || sql[j] == '.') {
				j++
			}
			toks = append(toks, token{tokNumber, sql[i:j]})
			i = j
		case isIdentStart(c):
			j := i
			for j < len(sql) && (isIdentStart(sql[j]) || isDigit(sql[j]) || sql[j] == '$') {
				j++
			}
			toks = append(toks, token{tokIdent, strings.ToLower(sql[i:j])})
			i = j
		default:
			toks = append(toks, token{tokPunct, string(c)})
			i++
		}
	}
	return toks, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

// splitStatements cuts a token list at top-level semicolons, dropping empty
// statements.
func splitStatements(toks []token) [][]token {
	var out [][]token
	start := 0
	for i, t := range toks {
		if t.kind == tokPunct && t.text == ";" {
			if i > start {
				out = append(out, toks[start:i])
			}
			start = i + 1
		}
	}
	if start < len(toks) {
		out = append(out, toks[start:])
	}
	return out
}

// literal is a value bound to a template's $n.
type literal struct {
	null bool
	text string
	num  bool // an unquoted number
}

func (l literal) int64() (int64, error) {
	if l.null {
		return 0, fmt.Errorf("null value")
	}
	return strconv.ParseInt(strings.TrimSpace(l.text), 10, 64)
}

// template is a statement with $n placeholders.
type template struct {
	toks   []token
	params int
}

func mustTemplate(sql string) template {
	toks, err := lex(sql)
	if err != nil {
		panic(fmt.Sprintf("database: bad template %q: %v", sql, err))
	}
	t := template{toks: toks}
	for _, tok := range toks {
		if tok.kind == tokParam {
			n, _ := strconv.Atoi(tok.text)
			t.params = max(t.params, n)
		}
	}
	return t
}

// match reports whether stmt is the template with literals for its
// parameters, and returns them (index 0 is $1).
func (t template) match(stmt []token) ([]literal, bool) {
	args := make([]literal, t.params)
	j := 0
	for _, want := range t.toks {
		if j >= len(stmt) {
			return nil, false
		}
		got := stmt[j]
		if want.kind == tokParam {
			n, _ := strconv.Atoi(want.text)
			var lit literal
			switch {
			case got.kind == tokString:
				lit = literal{text: got.text}
			case got.kind == tokNumber:
				lit = literal{text: got.text, num: true}
			case got.kind == tokPunct && got.text == "-" && j+1 < len(stmt) && stmt[j+1].kind == tokNumber:
				j++
				lit = literal{text: "-" + stmt[j].text, num: true}
			case got.kind == tokIdent && got.text == "null":
				lit = literal{null: true}
			default:
				return nil, false
			}
			args[n-1] = lit
			j++
			continue
		}
		if got != want {
			return nil, false
		}
		j++
	}
	if j != len(stmt) {
		return nil, false
	}
	return args, true
}
