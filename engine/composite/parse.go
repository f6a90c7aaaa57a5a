// Package composite parses and evaluates CloudWatch composite alarm rules:
//
//	ALARM(name)  OK(name)  INSUFFICIENT_DATA(name)  TRUE  FALSE
//	NOT x   x AND y   x OR y   ( x )
//	AT_LEAST(2, ALARM, (a, b, c))   AT_LEAST(60%, NOT OK, (a, b, c))
//
// Keywords are case-sensitive, NOT binds tighter than AND, which binds
// tighter than OR. Alarm names are bare (letters, digits, - _ . : /, so
// ARNs work) or double-quoted with \" and \\ escapes.
package composite

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/grayzone/grayzone/engine/alarm"
)

// Limits. CloudWatch caps AlarmRule at 10240 characters; Set.Add enforces
// that, not Parse, because the canonical form of a rule may be a little
// longer than its source and must still parse. The nesting limit keeps the
// recursive parser's stack small for hostile input; canonical forms never
// nest deeper than their source.
const (
	maxRuleLen = 10240
	maxDepth   = 100
)

type tokKind int

const (
	tEOF tokKind = iota
	tLParen
	tRParen
	tComma
	tPercent
	tWord   // a keyword or a bare name
	tString // a double-quoted name, text decoded
)

type token struct {
	kind tokKind
	text string
	off  int // byte offset in the rule
}

// describe names a token in an error message.
func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of rule"
	case tString:
		return "quoted name " + strconv.Quote(t.text)
	}
	return strconv.Quote(t.text)
}

var keywords = map[string]bool{
	"ALARM": true, "OK": true, "INSUFFICIENT_DATA": true, "TRUE": true, "FALSE": true,
	"AND": true, "OR": true, "NOT": true, "AT_LEAST": true,
}

func isBare(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-_.:/", r)
}

// Error is a parse error at a 1-based character column.
type Error struct {
	Col int
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("composite rule: col %d: %s", e.Col, e.Msg) }

type parser struct {
	src   string
	toks  []token
	pos   int
	depth int
}

func (p *parser) errAt(off int, format string, args ...any) error {
	return &Error{Col: utf8.RuneCountInString(p.src[:off]) + 1, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return p.errAt(i, "invalid UTF-8")
		case unicode.IsSpace(r):
			i += size
		case r == '(' || r == ')' || r == ',' || r == '%':
			kind := map[rune]tokKind{'(': tLParen, ')': tRParen, ',': tComma, '%': tPercent}[r]
			p.toks = append(p.toks, token{kind, string(r), i})
			i++
		case r == '"':
			start := i
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return p.errAt(start, "unterminated quoted name")
				}
				c, n := utf8.DecodeRuneInString(s[i:])
				if c == '"' {
					i++
					break
				}
				if c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if c == utf8.RuneError && n == 1 {
					return p.errAt(i, "invalid UTF-8")
				}
				if unicode.IsControl(c) {
					return p.errAt(i, "control character %q in quoted name", c)
				}
				b.WriteRune(c)
				i += n
			}
			if b.Len() == 0 {
				return p.errAt(start, "empty alarm name")
			}
			p.toks = append(p.toks, token{tString, b.String(), start})
		case isBare(r):
			start := i
			for i < len(s) {
				c, n := utf8.DecodeRuneInString(s[i:])
				if !isBare(c) {
					break
				}
				i += n
			}
			p.toks = append(p.toks, token{tWord, s[start:i], start})
		default:
			return p.errAt(i, "unexpected character %q", r)
		}
	}
	p.toks = append(p.toks, token{tEOF, "", len(s)})
	return nil
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) isWord(w string) bool {
	t := p.peek()
	return t.kind == tWord && t.text == w
}

func (p *parser) expect(kind tokKind, what string) (token, error) {
	t := p.next()
	if t.kind != kind {
		return t, p.errAt(t.off, "expected %s, got %s", what, t.describe())
	}
	return t, nil
}

func (p *parser) enter(t token) error {
	p.depth++
	if p.depth > maxDepth {
		return p.errAt(t.off, "nested more than %d deep", maxDepth)
	}
	return nil
}

// Parse parses a composite alarm rule.
func Parse(rule string) (*Rule, error) {
	p := &parser{src: rule}
	if err := p.lex(); err != nil {
		return nil, err
	}
	n, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errAt(t.off, "expected AND, OR or end of rule, got %s%s", t.describe(), caseHint(t))
	}
	return &Rule{root: n}, nil
}

func (p *parser) parseOr() (node, error) {
	x, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	xs := []node{x}
	for p.isWord("OR") {
		p.next()
		y, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		xs = append(xs, y)
	}
	if len(xs) == 1 {
		return x, nil
	}
	return &orNode{xs}, nil
}

func (p *parser) parseAnd() (node, error) {
	x, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	xs := []node{x}
	for p.isWord("AND") {
		p.next()
		y, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		xs = append(xs, y)
	}
	if len(xs) == 1 {
		return x, nil
	}
	return &andNode{xs}, nil
}

func (p *parser) parseUnary() (node, error) {
	if !p.isWord("NOT") {
		return p.parsePrimary()
	}
	t := p.next()
	if err := p.enter(t); err != nil {
		return nil, err
	}
	x, err := p.parseUnary()
	p.depth--
	if err != nil {
		return nil, err
	}
	return &notNode{x}, nil
}

var stateWords = map[string]alarm.State{"ALARM": alarm.Alarm, "OK": alarm.OK, "INSUFFICIENT_DATA": alarm.InsufficientData}

func (p *parser) parsePrimary() (node, error) {
	t := p.next()
	switch t.kind {
	case tLParen:
		if err := p.enter(t); err != nil {
			return nil, err
		}
		x, err := p.parseOr()
		p.depth--
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, p.errAt(c.off, "expected \")\" to close \"(\" at col %d, got %s%s", utf8.RuneCountInString(p.src[:t.off])+1, c.describe(), caseHint(c))
		}
		return x, nil
	case tWord:
		switch t.text {
		case "TRUE":
			return constNode(true), nil
		case "FALSE":
			return constNode(false), nil
		case "AT_LEAST":
			return p.parseAtLeast()
		}
		if st, ok := stateWords[t.text]; ok {
			if _, err := p.expect(tLParen, fmt.Sprintf("\"(\" after %s", t.text)); err != nil {
				return nil, err
			}
			name, err := p.parseName()
			if err != nil {
				return nil, err
			}
			if _, err := p.expect(tRParen, "\")\" after alarm name"); err != nil {
				return nil, err
			}
			return &stateNode{state: st, name: name}, nil
		}
		if h := caseHint(t); h != "" {
			return nil, p.errAt(t.off, "expected an expression, got %s%s", t.describe(), h)
		}
		if !keywords[t.text] {
			return nil, p.errAt(t.off, "expected an expression, got %s (alarm names go inside ALARM(), OK() or INSUFFICIENT_DATA())", t.describe())
		}
	case tString:
		return nil, p.errAt(t.off, "expected an expression, got %s (alarm names go inside ALARM(), OK() or INSUFFICIENT_DATA())", t.describe())
	}
	return nil, p.errAt(t.off, "expected an expression, got %s", t.describe())
}

// caseHint explains a keyword written in the wrong case, a common slip since
// CloudWatch's keywords are case-sensitive.
func caseHint(t token) string {
	if t.kind == tWord && !keywords[t.text] && keywords[strings.ToUpper(t.text)] {
		return " (keywords are upper case)"
	}
	return ""
}

// parseName reads an alarm name. A bare word is a name wherever a name is
// expected, even if it spells a keyword.
func (p *parser) parseName() (string, error) {
	t := p.next()
	if t.kind != tWord && t.kind != tString {
		return "", p.errAt(t.off, "expected alarm name, got %s", t.describe())
	}
	return t.text, nil
}

func (p *parser) parseAtLeast() (node, error) {
	if _, err := p.expect(tLParen, "\"(\" after AT_LEAST"); err != nil {
		return nil, err
	}
	n := &atLeastNode{}
	th := p.next()
	v, err := strconv.Atoi(th.text)
	if th.kind != tWord || err != nil || strings.IndexFunc(th.text, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return nil, p.errAt(th.off, "expected a count or a percentage such as 2 or 60%%, got %s", th.describe())
	}
	n.threshold = v
	if p.peek().kind == tPercent {
		p.next()
		n.percent = true
		if v < 1 || v > 100 {
			return nil, p.errAt(th.off, "AT_LEAST percentage %d%% must be between 1%% and 100%%", v)
		}
	} else if v < 1 {
		return nil, p.errAt(th.off, "AT_LEAST count %d must be at least 1", v)
	}
	if _, err := p.expect(tComma, "\",\" after AT_LEAST threshold"); err != nil {
		return nil, err
	}
	if p.isWord("NOT") {
		p.next()
		n.not = true
	}
	st := p.next()
	s, ok := stateWords[st.text]
	if st.kind != tWord || !ok {
		return nil, p.errAt(st.off, "expected ALARM, OK or INSUFFICIENT_DATA, optionally after NOT, got %s", st.describe())
	}
	n.state = s
	if _, err := p.expect(tComma, "\",\" after AT_LEAST state"); err != nil {
		return nil, err
	}
	if _, err := p.expect(tLParen, "\"(\" to open the AT_LEAST alarm list"); err != nil {
		return nil, err
	}
	for {
		name, err := p.parseName()
		if err != nil {
			return nil, err
		}
		n.alarms = append(n.alarms, name)
		t := p.next()
		if t.kind == tRParen {
			break
		}
		if t.kind != tComma {
			return nil, p.errAt(t.off, "expected \",\" or \")\" in the AT_LEAST alarm list, got %s", t.describe())
		}
	}
	if _, err := p.expect(tRParen, "\")\" to close AT_LEAST"); err != nil {
		return nil, err
	}
	if !n.percent && n.threshold > len(n.alarms) {
		return nil, p.errAt(th.off, "AT_LEAST count %d is more than the %d alarms listed", n.threshold, len(n.alarms))
	}
	return n, nil
}
