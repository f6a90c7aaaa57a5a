package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/grayzone/grayzone/operation"
)

// Error is one problem in a scenario file. Parse returns the first one, in
// document order, as an *Error.
type Error struct {
	File string
	Line int
	// Path names the key, e.g. "faults[0].percent"; empty for problems with
	// the file as a whole (syntax, empty file).
	Path string
	Msg  string

	// Where the error sorts in document order; a missing key is reported at
	// its parent's line but sorts after the parent's content, so that, say,
	// a misspelt key is reported rather than the key it failed to provide.
	sortLine, sortCol int
}

// Error renders FILE:LINE: PATH: MESSAGE on one line.
func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Path, e.Msg)
}

// Limits of the format. MaxInstancesPerZone is not in the contract; it keeps
// an absurd count from turning into millions of servers or slice entries.
const (
	MinDuration         = 10 * time.Second
	MaxDuration         = 24 * time.Hour
	MinZones            = 2
	MaxZones            = 6
	MaxInstancesPerZone = 1000
	DefaultSeed         = 1
	DefaultInterval     = 10 * time.Second
	MinInterval         = 100 * time.Millisecond
	DefaultControlPlane = 30 * time.Second
	DefaultRecoveryHold = 60 * time.Second
	shareTolerance      = 1e-9
)

var (
	nameRe = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)
	zoneRe = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	// instanceRe splits "<zone>-<n>"; n has no leading zero because
	// InstanceID never writes one, so "az-01" could never match an instance.
	instanceRe = regexp.MustCompile(`^(.+)-([1-9][0-9]*)$`)
	// plainKeyRe: keys that can be shown as .key in a path; anything else is
	// shown quoted, so a path never breaks the one-line error format.
	plainKeyRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	plainValRe = regexp.MustCompile(`^[A-Za-z0-9_.:+-]{1,40}$`)
	yamlLineRe = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)
)

var (
	topKeys      = []string{"version", "name", "description", "seed", "duration", "topology", "load", "canary", "policy", "faults", "expect"}
	topologyKeys = []string{"zones", "instances_per_zone", "database_zone"}
	loadKeys     = []string{"rps", "operations", "steps"}
	stepKeys     = []string{"at", "rps"}
	canaryKeys   = []string{"interval"}
	policyKeys   = []string{"control_plane_after", "recovery_hold"}
	faultKeys    = []string{"at", "duration", "kind", "zone", "instance", "region", "percent", "latency", "jitter"}
	expectKeys   = []string{"shift", "control_plane", "recovered_within", "max_failed_ratio"}
	shiftKeys    = []string{"away_from", "within"}
)

// Parse reads and validates one scenario. file only labels errors (and is
// stored in Scenario.File). Every error is a single line,
// FILE:LINE: KEY.PATH: what is wrong, and is the first problem in document
// order.
func Parse(file string, data []byte) (*Scenario, error) {
	p := &parser{file: file}
	root, second, err := p.decode(data)
	if err != nil {
		return nil, err
	}
	s := p.scenario(root)
	if second != nil {
		p.errAt(second.Line, second.Column, "", "only one YAML document is allowed in a scenario file")
	}
	if len(p.errs) > 0 {
		// Checks run in dependency order (topology before faults), so sort
		// to report what comes first in the file.
		sort.SliceStable(p.errs, func(i, j int) bool {
			a, b := p.errs[i], p.errs[j]
			if a.sortLine != b.sortLine {
				return a.sortLine < b.sortLine
			}
			return a.sortCol < b.sortCol
		})
		return nil, p.errs[0]
	}
	s.Source = append([]byte(nil), data...)
	return s, nil
}

type parser struct {
	file string
	errs []*Error

	runDuration time.Duration
	durationOK  bool
	zones       []string
	zonesOK     bool // zones is a valid list: references to it can be checked
	counts      map[string]int
}

// decode returns the top-level node of the first document and, if the file
// holds another document, that one's node (an error to report in order).
func (p *parser) decode(data []byte) (root, second *yaml.Node, err error) {
	// yaml.v3 signals errors with panics it recovers itself; should one ever
	// escape, a bad file must still be an ordinary error, not a crash.
	defer func() {
		if r := recover(); r != nil {
			root, second = nil, nil
			err = p.syntaxError(data, fmt.Sprint(r))
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, &Error{File: p.file, Line: 1, Msg: "empty file (expected a scenario: version, name, duration, topology, load, ...)"}
		}
		return nil, nil, p.syntaxError(data, err.Error())
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || isScalar(doc.Content[0], "!!null") {
		return nil, nil, &Error{File: p.file, Line: max(doc.Line, 1), Msg: "empty file (expected a scenario: version, name, duration, topology, load, ...)"}
	}
	root = doc.Content[0]
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		// A broken second document is still a syntax error.
		return nil, nil, p.syntaxError(data, err.Error())
	default:
		second = &next
	}
	return root, second, nil
}

// syntaxError turns the YAML library's message ("yaml: line N: problem", or
// without a line for some problems) into FILE:LINE: invalid YAML: problem.
func (p *parser) syntaxError(data []byte, msg string) *Error {
	line := 1
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n > 0 {
			line = n
		}
		msg = m[2]
		// The library prints the 0-based line for parser (as opposed to
		// scanner) errors; it omits the line when that is 0, hence line 1
		// above in that case.
		if isParserError(msg) {
			line++
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
		// The library gives no line for these; find it ourselves.
		if strings.HasPrefix(msg, "unknown anchor '") {
			name := strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor '"), "' referenced")
			if i := bytes.Index(data, []byte("*"+name)); i >= 0 {
				line = 1 + bytes.Count(data[:i], []byte("\n"))
			}
		} else if strings.Contains(msg, "control character") || strings.Contains(msg, "UTF-8") {
			line = badByteLine(data)
		}
	}
	return &Error{File: p.file, Line: line, Msg: "invalid YAML: " + oneLine(msg)}
}

// isParserError recognises the problems yaml.v3 raises in its parser (see
// yaml_parser_set_parser_error in parserc.go).
func isParserError(msg string) bool {
	for _, p := range []string{"did not find expected", "found duplicate %", "found incompatible YAML document", "found undefined tag handle"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// badByteLine is the line of the first byte YAML refuses: invalid UTF-8 or
// a control character other than tab, newline and carriage return.
func badByteLine(data []byte) int {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return line
		}
		if r == '\n' {
			line++
		} else if (r < 0x20 && r != '\t' && r != '\r') || r == 0x7f {
			return line
		}
		i += size
	}
	return 1
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func (p *parser) errAt(line, col int, path, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...), sortLine: line, sortCol: col})
}

// errMissing reports something missing from f's mapping: at f's line, sorted
// after everything f contains.
func (p *parser) errMissing(f field, path, format string, args ...any) {
	line, col := endPos(f.val)
	if line < f.line {
		line, col = f.line, f.col
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: f.line, Path: path, Msg: fmt.Sprintf(format, args...), sortLine: line, sortCol: col + 1})
}

// endPos is the position of the last node under n (aliases not followed).
func endPos(n *yaml.Node) (line, col int) {
	for n != nil {
		line, col = n.Line, n.Column
		if len(n.Content) == 0 {
			break
		}
		n = n.Content[len(n.Content)-1]
	}
	return line, col
}

// field is a value together with where it is used: the line of its key (or
// of its list item), which is where errors about the value point, even when
// the value is an alias to an anchor elsewhere.
type field struct {
	path      string
	key       string // the key, for values in a mapping
	line, col int
	val       *yaml.Node // aliases already resolved
}

func (f field) errorf(p *parser, format string, args ...any) {
	p.errAt(f.line, f.col, f.path, format, args...)
}

// deref follows aliases. The bound guards against anything cyclic; the
// library does not produce alias chains, but costs nothing to be safe.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func join(path, key string) string {
	if !plainKeyRe.MatchString(key) {
		return path + "[" + show(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// show renders user text for a message: plain when harmless, else quoted
// (which also escapes newlines) and shortened.
func show(s string) string {
	if plainValRe.MatchString(s) {
		return s
	}
	if r := []rune(s); len(r) > 40 {
		s = string(r[:40]) + "..."
	}
	return strconv.Quote(s)
}

// describe says what a node is, for "must be X, got Y" messages.
func describe(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return "boolean " + show(n.Value)
		case "!!int":
			return "integer " + show(n.Value)
		case "!!float":
			return "number " + show(n.Value)
		case "!!str":
			return "string " + strconv.Quote(truncate(n.Value))
		}
		return "value " + show(n.Value) + " tagged " + show(n.Tag)
	}
	return "an unresolved alias"
}

func truncate(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "..."
	}
	return s
}

func (p *parser) typeErr(f field, want string) {
	f.errorf(p, "must be %s, got %s", want, describe(f.val))
}

// mapping is a checked YAML mapping: no duplicate, unknown or non-scalar keys.
type mapping struct {
	field
	fields []field          // in document order
	byKey  map[string]field // first occurrence of each key
}

// mapping checks that f is a mapping whose keys are among known (any key
// when known is nil; the caller then checks them).
func (p *parser) mapping(f field, known []string) (*mapping, bool) {
	n := f.val
	if n == nil || n.Kind != yaml.MappingNode {
		p.typeErr(f, "a mapping")
		return nil, false
	}
	m := &mapping{field: f, byKey: map[string]field{}}
	firstLine := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := deref(n.Content[i])
		kn := n.Content[i]
		if k == nil || k.Kind != yaml.ScalarNode {
			p.errAt(kn.Line, kn.Column, f.path, "keys must be plain words, got %s as a key", describe(k))
			continue
		}
		c := field{path: join(f.path, k.Value), key: k.Value, line: kn.Line, col: kn.Column, val: deref(n.Content[i+1])}
		if l, dup := firstLine[k.Value]; dup {
			c.errorf(p, "duplicate key (first given at line %d)", l)
			continue
		}
		firstLine[k.Value] = kn.Line
		if known != nil && !slices.Contains(known, k.Value) {
			c.errorf(p, "unknown key (expected one of %s)", strings.Join(known, ", "))
			continue
		}
		m.fields = append(m.fields, c)
		m.byKey[k.Value] = c
	}
	return m, true
}

func (m *mapping) get(key string) (field, bool) {
	f, ok := m.byKey[key]
	return f, ok
}

// require reports a missing key at the line of the mapping that lacks it.
func (p *parser) require(m *mapping, key string) (field, bool) {
	f, ok := m.byKey[key]
	if !ok {
		p.errMissing(m.field, join(m.path, key), "required")
	}
	return f, ok
}

func isScalar(n *yaml.Node, tags ...string) bool {
	return n != nil && n.Kind == yaml.ScalarNode && slices.Contains(tags, n.ShortTag())
}

func (p *parser) str(f field) (string, bool) {
	if !isScalar(f.val, "!!str") {
		p.typeErr(f, "a string")
		return "", false
	}
	return f.val.Value, true
}

func (p *parser) integer(f field) (int64, bool) {
	var v int64
	if !isScalar(f.val, "!!int") || f.val.Decode(&v) != nil {
		p.typeErr(f, "an integer")
		return 0, false
	}
	return v, true
}

func (p *parser) number(f field) (float64, bool) {
	var v float64
	if !isScalar(f.val, "!!int", "!!float") || f.val.Decode(&v) != nil {
		p.typeErr(f, "a number")
		return 0, false
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		f.errorf(p, "%s is not a finite number", show(f.val.Value))
		return 0, false
	}
	return v, true
}

func (p *parser) boolean(f field) (bool, bool) {
	var v bool
	if !isScalar(f.val, "!!bool") || f.val.Decode(&v) != nil {
		p.typeErr(f, "true or false")
		return false, false
	}
	return v, true
}

// duration accepts Go duration syntax. "0" comes out of YAML as an integer
// and is a valid Go duration, so integers are tried too (and "60", lacking a
// unit, is then reported as a bad duration rather than a wrong type).
func (p *parser) duration(f field) (time.Duration, bool) {
	if !isScalar(f.val, "!!str", "!!int", "!!float") {
		p.typeErr(f, "a duration (e.g. 90s, 2m)")
		return 0, false
	}
	d, err := time.ParseDuration(f.val.Value)
	if err != nil {
		f.errorf(p, "%s is not a valid duration (Go syntax with a unit, e.g. 90s, 2m, 1h30m)", show(f.val.Value))
		return 0, false
	}
	return d, true
}

// positiveDuration reads an optional duration that must be > 0.
func (p *parser) positiveDuration(f field) (time.Duration, bool) {
	d, ok := p.duration(f)
	if ok && d <= 0 {
		f.errorf(p, "%s is out of range (must be > 0)", show(f.val.Value))
		return 0, false
	}
	return d, ok
}

func (p *parser) nonNegativeDuration(f field) (time.Duration, bool) {
	d, ok := p.duration(f)
	if ok && d < 0 {
		f.errorf(p, "%s is out of range (must be >= 0)", show(f.val.Value))
		return 0, false
	}
	return d, ok
}

// offset reads a time offset into the run: 0 <= at < duration (when the
// run's duration itself is valid; otherwise that error is the one to fix).
func (p *parser) offset(f field) (time.Duration, bool) {
	d, ok := p.duration(f)
	if !ok {
		return 0, false
	}
	if d < 0 || (p.durationOK && d >= p.runDuration) {
		if p.durationOK {
			f.errorf(p, "%s is out of range (0 <= at < duration %s)", show(f.val.Value), fmtDur(p.runDuration))
		} else {
			f.errorf(p, "%s is out of range (must be >= 0)", show(f.val.Value))
		}
		return 0, false
	}
	return d, true
}

// fmtDur prints durations the way people write them: 6m, not 6m0s.
func fmtDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (p *parser) zoneRef(f field) (string, bool) {
	z, ok := p.str(f)
	if !ok {
		return "", false
	}
	if p.zonesOK && !slices.Contains(p.zones, z) {
		f.errorf(p, "%s is not one of the zones (%s)", show(z), strings.Join(p.zones, ", "))
		return "", false
	}
	return z, true
}

func (p *parser) scenario(root *yaml.Node) *Scenario {
	s := &Scenario{File: p.file, Seed: DefaultSeed}
	rf := field{line: root.Line, col: root.Column, val: deref(root)}
	if rf.val == nil || rf.val.Kind != yaml.MappingNode {
		p.errAt(rf.line, rf.col, "", "the top level must be a mapping of scenario keys (version, name, duration, ...), got %s", describe(rf.val))
		return s
	}
	m, _ := p.mapping(rf, topKeys)

	if f, ok := p.require(m, "version"); ok {
		if v, ok := p.integer(f); ok {
			if v != 1 {
				f.errorf(p, "%s is not supported (must be 1)", show(f.val.Value))
			}
			s.Version = int(v)
		}
	}
	if f, ok := p.require(m, "name"); ok {
		if v, ok := p.str(f); ok {
			if !nameRe.MatchString(v) {
				f.errorf(p, "%s is not a valid name ([a-z0-9-]{1,63})", show(v))
			}
			s.Name = v
		}
	}
	if f, ok := m.get("description"); ok {
		// Folded (>) text ends in a newline nobody means.
		d, _ := p.str(f)
		s.Description = strings.TrimSpace(d)
	}
	if f, ok := m.get("seed"); ok {
		if v, ok := p.integer(f); ok {
			s.Seed = v
		}
	}
	if f, ok := p.require(m, "duration"); ok {
		if d, ok := p.duration(f); ok {
			if d < MinDuration || d > MaxDuration {
				f.errorf(p, "%s is out of range (10s <= duration <= 24h)", show(f.val.Value))
			} else {
				s.Duration, p.runDuration, p.durationOK = d, d, true
			}
		}
	}
	if f, ok := p.require(m, "topology"); ok {
		s.Topology = p.topology(f)
	}
	if f, ok := p.require(m, "load"); ok {
		s.Load = p.load(f)
	}
	s.Canary.Interval = DefaultInterval
	if f, ok := m.get("canary"); ok {
		p.canary(f, &s.Canary)
	}
	s.Policy = Policy{ControlPlaneAfter: DefaultControlPlane, RecoveryHold: DefaultRecoveryHold}
	if f, ok := m.get("policy"); ok {
		p.policy(f, &s.Policy)
	}
	if f, ok := m.get("faults"); ok {
		s.Faults = p.faults(f)
	}
	if f, ok := m.get("expect"); ok {
		s.Expect = p.expect(f)
	}
	return s
}

func (p *parser) topology(f field) Topology {
	var t Topology
	m, ok := p.mapping(f, topologyKeys)
	if !ok {
		return t
	}
	if zf, ok := p.require(m, "zones"); ok {
		t.Zones, p.zonesOK = p.zoneList(zf)
		p.zones = t.Zones
	}
	if inf, ok := p.require(m, "instances_per_zone"); ok {
		t.Instances = p.instances(inf)
		p.counts = t.Instances
	}
	if df, ok := m.get("database_zone"); ok {
		t.DatabaseZone, _ = p.zoneRef(df)
	} else if p.zonesOK {
		t.DatabaseZone = t.Zones[1]
	}
	return t
}

func (p *parser) zoneList(f field) ([]string, bool) {
	n := f.val
	if n == nil || n.Kind != yaml.SequenceNode {
		p.typeErr(f, "a list of zone ids")
		return nil, false
	}
	ok := true
	if c := len(n.Content); c < MinZones || c > MaxZones {
		plural := "s"
		if c == 1 {
			plural = ""
		}
		f.errorf(p, "%d zone%s given, need %d to %d", c, plural, MinZones, MaxZones)
		ok = false
	}
	var zones []string
	for i, item := range n.Content {
		zf := field{path: index(f.path, i), line: item.Line, col: item.Column, val: deref(item)}
		z, good := p.str(zf)
		switch {
		case !good:
			ok = false
		case !zoneRe.MatchString(z):
			zf.errorf(p, "%s is not a valid zone id ([a-z0-9-]{1,32})", show(z))
			ok = false
		case slices.Contains(zones, z):
			zf.errorf(p, "%s is listed twice", show(z))
			ok = false
		default:
			zones = append(zones, z)
		}
	}
	return zones, ok
}

func (p *parser) instanceCount(f field) (int, bool) {
	v, ok := p.integer(f)
	if !ok {
		return 0, false
	}
	if v < 1 || v > MaxInstancesPerZone {
		f.errorf(p, "%s is out of range (1 <= instances <= %d)", show(f.val.Value), MaxInstancesPerZone)
		return 0, false
	}
	return int(v), true
}

// instances reads instances_per_zone, a count for all zones or a map zone ->
// count. The result is nil unless every zone has a valid count.
func (p *parser) instances(f field) map[string]int {
	n := f.val
	if isScalar(n, "!!int") {
		c, ok := p.instanceCount(f)
		if !ok || !p.zonesOK {
			return nil
		}
		out := make(map[string]int, len(p.zones))
		for _, z := range p.zones {
			out[z] = c
		}
		return out
	}
	if n == nil || n.Kind != yaml.MappingNode {
		p.typeErr(f, "an integer >= 1 or a mapping zone -> integer")
		return nil
	}
	m, _ := p.mapping(f, nil)
	out := map[string]int{}
	ok := true
	for _, zf := range m.fields {
		zone := zf.key
		if p.zonesOK && !slices.Contains(p.zones, zone) {
			zf.errorf(p, "unknown zone (zones: %s)", strings.Join(p.zones, ", "))
			ok = false
			continue
		}
		c, good := p.instanceCount(zf)
		ok = ok && good
		out[zone] = c
	}
	if !p.zonesOK {
		return nil
	}
	for _, z := range p.zones {
		if _, given := m.byKey[z]; !given {
			p.errMissing(f, join(f.path, z), "required (every zone needs an instance count)")
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return out
}

func (p *parser) load(f field) Load {
	var l Load
	m, ok := p.mapping(f, loadKeys)
	if !ok {
		return l
	}
	if rf, ok := p.require(m, "rps"); ok {
		l.RPS, _ = p.rps(rf)
	}
	if of, ok := m.get("operations"); ok {
		l.Mix = p.operations(of)
	} else {
		for _, op := range operation.Catalog {
			if op.DefaultMix > 0 {
				l.Mix = append(l.Mix, OperationShare{Operation: op.Name, Share: op.DefaultMix})
			}
		}
	}
	if sf, ok := m.get("steps"); ok {
		l.Steps = p.steps(sf)
	}
	return l
}

func (p *parser) rps(f field) (float64, bool) {
	v, ok := p.number(f)
	if ok && v <= 0 {
		f.errorf(p, "%s is out of range (must be > 0)", show(f.val.Value))
		return 0, false
	}
	return v, ok
}

func (p *parser) operations(f field) []OperationShare {
	m, ok := p.mapping(f, nil)
	if !ok {
		return nil
	}
	shares := map[string]float64{}
	sum, good := 0.0, true
	for _, of := range m.fields {
		name := of.key
		if _, known := operation.Lookup(name); !known {
			of.errorf(p, "unknown operation (catalogue: %s)", strings.Join(operation.Names(), ", "))
			good = false
			continue
		}
		v, ok := p.number(of)
		if ok && (v < 0 || v > 1) {
			of.errorf(p, "%s is out of range (0 <= share <= 1)", show(of.val.Value))
			ok = false
		}
		good = good && ok
		shares[name] = v
		sum += v
	}
	if !good {
		return nil
	}
	if math.Abs(sum-1) > shareTolerance {
		f.errorf(p, "shares sum to %.10g, must sum to 1", sum)
		return nil
	}
	var mix []OperationShare
	for _, op := range operation.Catalog {
		if s := shares[op.Name]; s > 0 {
			mix = append(mix, OperationShare{Operation: op.Name, Share: s})
		}
	}
	return mix
}

func (p *parser) steps(f field) []Step {
	n := f.val
	if n == nil || n.Kind != yaml.SequenceNode {
		p.typeErr(f, "a list of {at, rps}")
		return nil
	}
	var steps []Step
	var prev field
	for i, item := range n.Content {
		sf := field{path: index(f.path, i), line: item.Line, col: item.Column, val: deref(item)}
		m, ok := p.mapping(sf, stepKeys)
		if !ok {
			continue
		}
		var st Step
		if af, ok := p.require(m, "at"); ok {
			if at, ok := p.offset(af); ok {
				if len(steps) > 0 && at <= steps[len(steps)-1].At {
					af.errorf(p, "%s is not after the previous step's at (%s); steps must be in increasing order", show(af.val.Value), show(prev.val.Value))
				}
				st.At, prev = at, af
			}
		}
		if rf, ok := p.require(m, "rps"); ok {
			st.RPS, _ = p.rps(rf)
		}
		steps = append(steps, st)
	}
	return steps
}

func (p *parser) canary(f field, c *Canary) {
	m, ok := p.mapping(f, canaryKeys)
	if !ok {
		return
	}
	if inf, ok := m.get("interval"); ok {
		d, ok := p.duration(inf)
		if !ok {
			return
		}
		// Below 100ms the canaries would be load, not probes; above the run's
		// duration they would never call.
		if d < MinInterval || (p.durationOK && d > p.runDuration) {
			limit := "duration"
			if p.durationOK {
				limit = "duration " + fmtDur(p.runDuration)
			}
			inf.errorf(p, "%s is out of range (100ms <= interval <= %s)", show(inf.val.Value), limit)
			return
		}
		c.Interval = d
	}
}

func (p *parser) policy(f field, pol *Policy) {
	m, ok := p.mapping(f, policyKeys)
	if !ok {
		return
	}
	if cf, ok := m.get("control_plane_after"); ok {
		pol.ControlPlaneAfter, _ = p.nonNegativeDuration(cf)
	}
	if rf, ok := m.get("recovery_hold"); ok {
		pol.RecoveryHold, _ = p.nonNegativeDuration(rf)
	}
}

func (p *parser) faults(f field) []Fault {
	n := f.val
	if n == nil || n.Kind != yaml.SequenceNode {
		p.typeErr(f, "a list of faults")
		return nil
	}
	var out []Fault
	for i, item := range n.Content {
		ff := field{path: index(f.path, i), line: item.Line, col: item.Column, val: deref(item)}
		if fl, ok := p.fault(ff); ok {
			out = append(out, fl)
		}
	}
	return out
}

func kindNames() string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

func (p *parser) fault(f field) (Fault, bool) {
	fl := Fault{Line: f.line}
	m, ok := p.mapping(f, faultKeys)
	if !ok {
		return fl, false
	}
	if af, ok := p.require(m, "at"); ok {
		fl.At, _ = p.offset(af)
	}
	if df, ok := m.get("duration"); ok {
		fl.Duration, _ = p.positiveDuration(df)
	}
	kindOK := false
	if kf, ok := p.require(m, "kind"); ok {
		if k, ok := p.str(kf); ok {
			if slices.Contains(Kinds, Kind(k)) {
				fl.Kind, kindOK = Kind(k), true
			} else {
				kf.errorf(p, "%s is not a fault kind (one of %s)", show(k), kindNames())
			}
		}
	}

	// The target: exactly one of zone, instance, region, checked in the
	// order written so the second one given is the one reported.
	var target *field
	for _, tf := range m.fields {
		key := tf.key
		if key != "zone" && key != "instance" && key != "region" {
			continue
		}
		if target != nil {
			tf.errorf(p, "conflicts with %s (a fault has exactly one target: zone, instance or region)", target.key)
			continue
		}
		target = &tf
		switch key {
		case "zone":
			fl.Target.Zone, _ = p.zoneRef(tf)
		case "instance":
			fl.Target.Instance, _ = p.instance(tf)
		case "region":
			if v, ok := p.boolean(tf); ok {
				if !v {
					tf.errorf(p, "must be true when given (to target one zone or instance, use zone or instance)")
				}
				fl.Target.Region = v
			}
		}
		if kindOK && fl.Kind == ControlPlaneOutage && key != "region" {
			tf.errorf(p, "control_plane_outage acts on the instance group, its target must be region: true")
		}
	}
	if target == nil {
		p.errMissing(f, f.path, "no target (exactly one of zone, instance, region is required)")
	}

	needsPercent := fl.Kind == PacketLoss || fl.Kind == Reset || fl.Kind == HTTPError
	needsLatency := fl.Kind == Latency || fl.Kind == Slow
	pf, hasPercent := m.get("percent")
	switch {
	case kindOK && hasPercent && !needsPercent:
		pf.errorf(p, "percent not allowed for kind %s (only for packet_loss, reset, http_error)", fl.Kind)
	case kindOK && !hasPercent && needsPercent:
		p.errMissing(f, join(f.path, "percent"), "required for kind %s", fl.Kind)
	case hasPercent:
		if v, ok := p.number(pf); ok {
			if v <= 0 || v > 100 {
				pf.errorf(p, "%s is out of range (0 < percent <= 100)", show(pf.val.Value))
			}
			fl.Percent = v
		}
	}
	lf, hasLatency := m.get("latency")
	latencyOK := false
	switch {
	case kindOK && hasLatency && !needsLatency:
		lf.errorf(p, "latency not allowed for kind %s (only for latency, slow)", fl.Kind)
	case kindOK && !hasLatency && needsLatency:
		p.errMissing(f, join(f.path, "latency"), "required for kind %s", fl.Kind)
	case hasLatency:
		fl.Latency, latencyOK = p.positiveDuration(lf)
	}
	if jf, ok := m.get("jitter"); ok {
		if kindOK && !needsLatency {
			jf.errorf(p, "jitter not allowed for kind %s (only for latency, slow)", fl.Kind)
		} else if j, ok := p.nonNegativeDuration(jf); ok {
			if latencyOK && j > fl.Latency {
				jf.errorf(p, "%s is larger than latency (%s)", show(jf.val.Value), show(lf.val.Value))
			}
			fl.Jitter = j
		}
	}
	return fl, true
}

// instance checks "<zone>-<n>" against the topology: the zone must exist and
// have at least n instances.
func (p *parser) instance(f field) (string, bool) {
	id, ok := p.str(f)
	if !ok {
		return "", false
	}
	sub := instanceRe.FindStringSubmatch(id)
	if sub == nil || !zoneRe.MatchString(sub[1]) {
		f.errorf(p, "%s is not an instance id (<zone>-<n>, n counted from 1)", show(id))
		return "", false
	}
	if !p.zonesOK {
		return id, true
	}
	zone := sub[1]
	if !slices.Contains(p.zones, zone) {
		f.errorf(p, "instance %s does not exist (no zone %s; zones: %s)", id, zone, strings.Join(p.zones, ", "))
		return "", false
	}
	if p.counts == nil {
		return id, true
	}
	n, err := strconv.Atoi(sub[2])
	if c := p.counts[zone]; err != nil || n > c {
		f.errorf(p, "instance %s does not exist (zone %s has %d instances)", id, zone, c)
		return "", false
	}
	return id, true
}

func (p *parser) expect(f field) Expect {
	var e Expect
	m, ok := p.mapping(f, expectKeys)
	if !ok {
		return e
	}
	if sf, ok := m.get("shift"); ok {
		e.Shift = p.shift(sf)
	}
	if cf, ok := m.get("control_plane"); ok {
		if v, ok := p.boolean(cf); ok {
			e.ControlPlane = &v
		}
	}
	if rf, ok := m.get("recovered_within"); ok {
		e.RecoveredWithin, _ = p.positiveDuration(rf)
	}
	if rf, ok := m.get("max_failed_ratio"); ok {
		if v, ok := p.number(rf); ok {
			if v < 0 || v > 1 {
				rf.errorf(p, "%s is out of range (0 <= ratio <= 1)", show(rf.val.Value))
			}
			e.MaxFailedRatio = &v
		}
	}
	return e
}

func (p *parser) shift(f field) *ExpectShift {
	n := f.val
	if n != nil && n.Kind == yaml.ScalarNode {
		if n.ShortTag() == "!!str" && n.Value == "none" {
			return &ExpectShift{None: true}
		}
		what := describe(n)
		if n.ShortTag() == "!!str" {
			what = show(n.Value)
		}
		f.errorf(p, "%s is not valid (the word none, or {away_from: ZONE, within: DURATION})", what)
		return nil
	}
	m, ok := p.mapping(f, shiftKeys)
	if !ok {
		return nil
	}
	es := &ExpectShift{}
	if af, ok := p.require(m, "away_from"); ok {
		es.AwayFrom, _ = p.zoneRef(af)
	}
	if wf, ok := m.get("within"); ok {
		es.Within, _ = p.positiveDuration(wf)
	}
	return es
}
