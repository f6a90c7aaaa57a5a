package composite

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/grayzone/grayzone/engine/alarm"
)

// Rule is a parsed composite alarm rule.
type Rule struct {
	root node
}

// Explanation is one node of a rule's evaluation: its canonical text, its
// value, why (for alarm references and AT_LEAST), and its operands.
type Explanation struct {
	Text     string
	Value    bool
	Detail   string // e.g. `cpu-high is OK`, `2 of 3 in ALARM, need 2`
	Children []Explanation
}

// TrueChildren returns the operands that evaluated to true.
func (e Explanation) TrueChildren() []Explanation {
	var out []Explanation
	for _, c := range e.Children {
		if c.Value {
			out = append(out, c)
		}
	}
	return out
}

// String renders the explanation on one line, e.g.
// `ALARM(a) AND NOT ALARM(b) = false {ALARM(a) = true [a is ALARM]; NOT ALARM(b) = false {...}}`.
func (e Explanation) String() string {
	var b strings.Builder
	e.write(&b)
	return b.String()
}

func (e Explanation) write(b *strings.Builder) {
	fmt.Fprintf(b, "%s = %t", e.Text, e.Value)
	if e.Detail != "" {
		fmt.Fprintf(b, " [%s]", e.Detail)
	}
	if len(e.Children) == 0 {
		return
	}
	b.WriteString(" {")
	for i, c := range e.Children {
		if i > 0 {
			b.WriteString("; ")
		}
		c.write(b)
	}
	b.WriteString("}")
}

// String returns the rule in canonical form: single spaces, keywords upper
// case, only the parentheses the tree needs, names bare where the grammar
// allows. Parsing it yields the same rule.
func (r *Rule) String() string {
	var b strings.Builder
	r.root.write(&b)
	return b.String()
}

// Names returns the alarms the rule refers to, each once, in order of first
// appearance.
func (r *Rule) Names() []string {
	var out []string
	seen := map[string]bool{}
	r.root.names(func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	})
	return out
}

// Eval evaluates the rule; states returns an alarm's current state, or ""
// for an alarm it does not know, which matches no state function.
func (r *Rule) Eval(states func(name string) alarm.State) bool { return r.root.eval(states) }

// Explain evaluates the rule and returns the whole evaluation tree. Unlike
// Eval it does not short-circuit, so every operand's value is reported.
func (r *Rule) Explain(states func(name string) alarm.State) Explanation {
	return r.root.explain(states)
}

// Operator precedence, for deciding where String needs parentheses.
const (
	precOr = iota + 1
	precAnd
	precUnary
)

type node interface {
	eval(func(string) alarm.State) bool
	explain(func(string) alarm.State) Explanation
	write(*strings.Builder)
	names(func(string))
	prec() int
}

func text(n node) string {
	var b strings.Builder
	n.write(&b)
	return b.String()
}

// writeOperand parenthesises x when its precedence is not above limit, so
// that an explicitly grouped "a AND (b AND c)" keeps its shape.
func writeOperand(b *strings.Builder, x node, limit int) {
	if x.prec() <= limit {
		b.WriteByte('(')
		x.write(b)
		b.WriteByte(')')
		return
	}
	x.write(b)
}

// writeName writes a name bare when it lexes back as one word and cannot be
// misread as a keyword; otherwise quoted.
func writeName(b *strings.Builder, name string) {
	bare := name != "" && !keywords[name]
	for _, r := range name {
		if !isBare(r) {
			bare = false
			break
		}
	}
	if bare {
		b.WriteString(name)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(name); i++ {
		if name[i] == '"' || name[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(name[i])
	}
	b.WriteByte('"')
}

type constNode bool

func (c constNode) eval(func(string) alarm.State) bool { return bool(c) }
func (c constNode) explain(func(string) alarm.State) Explanation {
	return Explanation{Text: text(c), Value: bool(c)}
}
func (c constNode) names(func(string)) {}
func (c constNode) prec() int          { return precUnary }
func (c constNode) write(b *strings.Builder) {
	if c {
		b.WriteString("TRUE")
	} else {
		b.WriteString("FALSE")
	}
}

// stateNode is ALARM(name), OK(name) or INSUFFICIENT_DATA(name).
type stateNode struct {
	state alarm.State
	name  string
}

func (s *stateNode) eval(states func(string) alarm.State) bool { return states(s.name) == s.state }
func (s *stateNode) explain(states func(string) alarm.State) Explanation {
	st := states(s.name)
	return Explanation{Text: text(s), Value: st == s.state, Detail: describeState(s.name, st)}
}
func (s *stateNode) names(add func(string)) { add(s.name) }
func (s *stateNode) prec() int              { return precUnary }
func (s *stateNode) write(b *strings.Builder) {
	b.WriteString(string(s.state))
	b.WriteByte('(')
	writeName(b, s.name)
	b.WriteByte(')')
}

func describeState(name string, st alarm.State) string {
	if st == "" {
		return name + " is unknown"
	}
	return name + " is " + string(st)
}

type notNode struct{ x node }

func (n *notNode) eval(states func(string) alarm.State) bool { return !n.x.eval(states) }
func (n *notNode) explain(states func(string) alarm.State) Explanation {
	c := n.x.explain(states)
	return Explanation{Text: text(n), Value: !c.Value, Children: []Explanation{c}}
}
func (n *notNode) names(add func(string)) { n.x.names(add) }
func (n *notNode) prec() int              { return precUnary }
func (n *notNode) write(b *strings.Builder) {
	b.WriteString("NOT ")
	writeOperand(b, n.x, precAnd)
}

type andNode struct{ xs []node }

func (n *andNode) eval(states func(string) alarm.State) bool {
	for _, x := range n.xs {
		if !x.eval(states) {
			return false
		}
	}
	return true
}
func (n *andNode) explain(states func(string) alarm.State) Explanation {
	return explainList(n, n.xs, states, func(t int) bool { return t == len(n.xs) })
}
func (n *andNode) names(add func(string)) {
	for _, x := range n.xs {
		x.names(add)
	}
}
func (n *andNode) prec() int { return precAnd }
func (n *andNode) write(b *strings.Builder) {
	for i, x := range n.xs {
		if i > 0 {
			b.WriteString(" AND ")
		}
		writeOperand(b, x, precAnd)
	}
}

type orNode struct{ xs []node }

func (n *orNode) eval(states func(string) alarm.State) bool {
	for _, x := range n.xs {
		if x.eval(states) {
			return true
		}
	}
	return false
}
func (n *orNode) explain(states func(string) alarm.State) Explanation {
	return explainList(n, n.xs, states, func(t int) bool { return t > 0 })
}
func (n *orNode) names(add func(string)) {
	for _, x := range n.xs {
		x.names(add)
	}
}
func (n *orNode) prec() int { return precOr }
func (n *orNode) write(b *strings.Builder) {
	for i, x := range n.xs {
		if i > 0 {
			b.WriteString(" OR ")
		}
		writeOperand(b, x, precOr)
	}
}

func explainList(n node, xs []node, states func(string) alarm.State, decide func(trueCount int) bool) Explanation {
	e := Explanation{Text: text(n)}
	t := 0
	for _, x := range xs {
		c := x.explain(states)
		if c.Value {
			t++
		}
		e.Children = append(e.Children, c)
	}
	e.Value = decide(t)
	e.Detail = fmt.Sprintf("%d of %d true", t, len(xs))
	return e
}

// atLeastNode is AT_LEAST(threshold[%], [NOT] state, (names...)).
type atLeastNode struct {
	threshold int
	percent   bool
	not       bool
	state     alarm.State
	alarms    []string
}

func (n *atLeastNode) matches(st alarm.State) bool { return (st == n.state) != n.not }

// satisfied compares in integers: k of len alarms reach p% when
// 100·k ≥ p·len, so 60% of 3 needs 2.
func (n *atLeastNode) satisfied(k int) bool {
	if n.percent {
		return 100*k >= n.threshold*len(n.alarms)
	}
	return k >= n.threshold
}

func (n *atLeastNode) eval(states func(string) alarm.State) bool {
	k := 0
	for _, name := range n.alarms {
		if n.matches(states(name)) {
			k++
		}
	}
	return n.satisfied(k)
}

func (n *atLeastNode) stateText() string {
	if n.not {
		return "NOT " + string(n.state)
	}
	return string(n.state)
}

func (n *atLeastNode) explain(states func(string) alarm.State) Explanation {
	e := Explanation{Text: text(n)}
	k := 0
	for _, name := range n.alarms {
		st := states(name)
		m := n.matches(st)
		if m {
			k++
		}
		one := &stateNode{state: n.state, name: name}
		t := text(one)
		if n.not {
			t = "NOT " + t
		}
		e.Children = append(e.Children, Explanation{Text: t, Value: m, Detail: describeState(name, st)})
	}
	e.Value = n.satisfied(k)
	need := strconv.Itoa(n.threshold)
	if n.percent {
		need += "%"
	}
	e.Detail = fmt.Sprintf("%d of %d in %s, need %s", k, len(n.alarms), n.stateText(), need)
	return e
}

func (n *atLeastNode) names(add func(string)) {
	for _, name := range n.alarms {
		add(name)
	}
}
func (n *atLeastNode) prec() int { return precUnary }
func (n *atLeastNode) write(b *strings.Builder) {
	b.WriteString("AT_LEAST(")
	b.WriteString(strconv.Itoa(n.threshold))
	if n.percent {
		b.WriteByte('%')
	}
	b.WriteString(", ")
	b.WriteString(n.stateText())
	b.WriteString(", (")
	for i, name := range n.alarms {
		if i > 0 {
			b.WriteString(", ")
		}
		writeName(b, name)
	}
	b.WriteString("))")
}
