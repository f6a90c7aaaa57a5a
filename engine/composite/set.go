package composite

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/grayzone/grayzone/engine/alarm"
)

// Set is a registry of composite alarms, which may refer to metric alarms and
// to each other. The zero value is an empty set.
type Set struct {
	order []string // insertion order, so errors and evaluation are deterministic
	rules map[string]*Rule
}

// Add parses ruleText and registers it as composite alarm name.
func (s *Set) Add(name, ruleText string) error {
	switch {
	case name == "":
		return fmt.Errorf("composite alarm: name is empty")
	case len(name) > 255:
		return fmt.Errorf("composite alarm %q...: name is %d bytes, longer than CloudWatch's 255", name[:32], len(name))
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("composite alarm %q: name contains a control character", name)
	}
	if len(ruleText) > maxRuleLen {
		return fmt.Errorf("composite alarm %q: rule is %d bytes, longer than CloudWatch's limit of %d", name, len(ruleText), maxRuleLen)
	}
	if _, dup := s.rules[name]; dup {
		return fmt.Errorf("composite alarm %q: already defined", name)
	}
	r, err := Parse(ruleText)
	if err != nil {
		return fmt.Errorf("composite alarm %q: %w", name, err)
	}
	if s.rules == nil {
		s.rules = map[string]*Rule{}
	}
	s.rules[name] = r
	s.order = append(s.order, name)
	return nil
}

// Names returns the composite alarms in the order they were added.
func (s *Set) Names() []string { return append([]string(nil), s.order...) }

// Rule returns the rule of composite alarm name, or nil.
func (s *Set) Rule(name string) *Rule { return s.rules[name] }

// Check reports the first problem found, in insertion order: a composite
// whose name is also a metric alarm, a reference to an alarm that is neither
// a composite in the set nor known (known may be nil: nothing else is known),
// or a cycle among composites.
func (s *Set) Check(known func(name string) bool) error {
	isKnown := func(n string) bool { return known != nil && known(n) }
	for _, name := range s.order {
		if isKnown(name) {
			return fmt.Errorf("composite alarm %q: name is also a metric alarm", name)
		}
		for _, ref := range s.rules[name].Names() {
			if _, ok := s.rules[ref]; !ok && !isKnown(ref) {
				return fmt.Errorf("composite alarm %q: rule references unknown alarm %q", name, ref)
			}
		}
	}
	var cycle []string
	s.walk(func(path []string, ref string) {
		if cycle != nil {
			return
		}
		for i, p := range path {
			if p == ref {
				cycle = append(append([]string(nil), path[i:]...), ref)
				return
			}
		}
	}, nil)
	if cycle != nil {
		return fmt.Errorf("composite alarm cycle: %s", strings.Join(cycle, " -> "))
	}
	return nil
}

// walk visits composites depth first, dependencies before dependants,
// calling post for each composite once all it depends on has been visited,
// and back for each reference that closes a cycle (path is the stack of
// composites being visited).
func (s *Set) walk(back func(path []string, ref string), post func(name string)) {
	const (
		unvisited = iota
		active
		done
	)
	mark := map[string]int{}
	var path []string
	var visit func(string)
	visit = func(name string) {
		mark[name] = active
		path = append(path, name)
		for _, ref := range s.rules[name].Names() {
			if _, composite := s.rules[ref]; !composite {
				continue
			}
			switch mark[ref] {
			case unvisited:
				visit(ref)
			case active:
				if back != nil {
					back(path, ref)
				}
			}
		}
		path = path[:len(path)-1]
		mark[name] = done
		if post != nil {
			post(name)
		}
	}
	for _, name := range s.order {
		if mark[name] == unvisited {
			visit(name)
		}
	}
}

// Evaluate returns the state of every composite: ALARM when its rule is
// true, else OK. Composites are evaluated after the composites they refer to,
// so a composite sees this round's states. Names not in metricStates and not
// composites are unknown (they match no state function). A composite takes
// precedence over a metric alarm of the same name. If Check was skipped and
// there is a cycle, the reference that closes it reads as unknown.
func (s *Set) Evaluate(metricStates map[string]alarm.State) map[string]alarm.State {
	out := make(map[string]alarm.State, len(s.order))
	s.walk(nil, func(name string) {
		if s.rules[name].Eval(s.lookup(metricStates, out)) {
			out[name] = alarm.Alarm
		} else {
			out[name] = alarm.OK
		}
	})
	return out
}

// Explain is Evaluate with each composite's evaluation tree.
func (s *Set) Explain(metricStates map[string]alarm.State) map[string]Explanation {
	states := make(map[string]alarm.State, len(s.order))
	out := make(map[string]Explanation, len(s.order))
	s.walk(nil, func(name string) {
		e := s.rules[name].Explain(s.lookup(metricStates, states))
		out[name] = e
		states[name] = alarm.OK
		if e.Value {
			states[name] = alarm.Alarm
		}
	})
	return out
}

func (s *Set) lookup(metric, composite map[string]alarm.State) func(string) alarm.State {
	return func(name string) alarm.State {
		if _, ok := s.rules[name]; ok {
			return composite[name] // "" while not yet evaluated (a cycle)
		}
		return metric[name]
	}
}
