package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/grayzone/grayzone/detect"
	"github.com/grayzone/grayzone/operation"
	"github.com/grayzone/grayzone/outlier"
	"github.com/grayzone/grayzone/practice"
)

// Error is one problem in a configuration file. Parse returns the first one,
// in document order, as an *Error.
type Error struct {
	File string
	Line int
	// Path names the key, e.g. "resources[0].zones[1]"; empty for problems
	// with the file as a whole (syntax, empty file).
	Path string
	Msg  string

	// Where the error sorts in document order; a missing key is reported at
	// its parent's line but sorts after the parent's content.
	sortLine, sortCol int
}

// Error renders FILE:LINE: PATH: MESSAGE on one line.
func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Path, e.Msg)
}

var (
	nameRe   = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)
	zoneRe   = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	targetRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,63}$`)
	opRe     = regexp.MustCompile(`^[a-z0-9_-]{1,63}$`)
	// tokenRe is RFC 6750's b64token, what fits an Authorization header.
	tokenRe    = regexp.MustCompile(`^[A-Za-z0-9._~+/-]+=*$`)
	plainKeyRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	plainValRe = regexp.MustCompile(`^[A-Za-z0-9_.:+-]{1,40}$`)
	yamlLineRe = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)
)

var (
	topKeys       = []string{"listen", "data_dir", "auth", "resources"}
	authKeys      = []string{"tokens_file", "tokens", "open_reads"}
	resourceKeys  = []string{"name", "zones", "min_capacity", "frontdoor", "operations", "detector", "canaries", "autoshift", "practice"}
	frontdoorKeys = []string{"type", "regional", "zonal", "targets", "health_check"}
	targetKeys    = []string{"id", "zone", "addr"}
	healthKeys    = []string{"path", "interval", "timeout", "healthy_threshold", "unhealthy_threshold"}
	operationKeys = []string{"latency_threshold"}
	detectorKeys  = []string{"profile", "false_alarm_rate", "min_instances", "outlier", "outlier_threshold"}
	canaryKeys    = []string{"zone", "url", "interval"}
	autoshiftKeys = []string{"enabled", "dry_run", "approval", "min_interval", "expires_in", "control_plane_after", "recovery_hold"}
	practiceKeys  = []string{"enabled", "interval", "duration", "outcome_alarms", "blocking_alarms", "blocked_windows", "blocked_dates"}
)

const emptyMsg = "empty file (expected a serve configuration: listen, data_dir, auth, resources)"

// Parse reads and validates one configuration. file labels errors, is
// stored in Config.File, and is where a relative tokens_file is resolved
// from. Every error is a single line, FILE:LINE: KEY.PATH: what is wrong,
// and is the first problem in document order.
func Parse(file string, data []byte) (*Config, error) {
	p := &parser{file: file, addrs: map[string]string{}}
	root, second, err := p.decode(data)
	if err != nil {
		return nil, err
	}
	c := p.config(root)
	if second != nil {
		p.errAt(second.Line, second.Column, "", "only one YAML document is allowed in a configuration file")
	}
	if len(p.errs) > 0 {
		// Checks run in dependency order (zones before what refers to them),
		// so sort to report what comes first in the file.
		sort.SliceStable(p.errs, func(i, j int) bool {
			a, b := p.errs[i], p.errs[j]
			if a.sortLine != b.sortLine {
				return a.sortLine < b.sortLine
			}
			return a.sortCol < b.sortCol
		})
		return nil, p.errs[0]
	}
	return c, nil
}

type parser struct {
	file string
	errs []*Error
	// addrs maps each listen address to the key that first uses it: two
	// listeners on one address would fail at start, after half started.
	addrs map[string]string
}

// res is what checks inside one resource refer to.
type res struct {
	name    string
	zones   []string
	zonesOK bool // zones is a valid list: references to it can be checked
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
			return nil, nil, &Error{File: p.file, Line: 1, Msg: emptyMsg}
		}
		return nil, nil, p.syntaxError(data, err.Error())
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || isScalar(doc.Content[0], "!!null") {
		return nil, nil, &Error{File: p.file, Line: max(doc.Line, 1), Msg: emptyMsg}
	}
	root = doc.Content[0]
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
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
		// scanner) errors.
		if isParserError(msg) {
			line++
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
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

func isParserError(msg string) bool {
	for _, p := range []string{"did not find expected", "found duplicate %", "found incompatible YAML document", "found undefined tag handle"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// badByteLine is the line of the first byte YAML refuses.
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

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func (p *parser) errAt(line, col int, path, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Path: path, Msg: oneLine(fmt.Sprintf(format, args...)), sortLine: line, sortCol: col})
}

// errMissing reports something missing from f: at f's line, sorted after
// everything f contains.
func (p *parser) errMissing(f field, path, format string, args ...any) {
	line, col := endPos(f.val)
	if line < f.line {
		line, col = f.line, f.col
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: f.line, Path: path, Msg: oneLine(fmt.Sprintf(format, args...)), sortLine: line, sortCol: col + 1})
}

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

// field is a value with where it is used: the line of its key (or list
// item), where errors about it point, even when it is an alias.
type field struct {
	path      string
	key       string
	line, col int
	val       *yaml.Node // aliases already resolved
}

func (f field) errorf(p *parser, format string, args ...any) {
	p.errAt(f.line, f.col, f.path, format, args...)
}

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

// show renders YAML text for a message: plain when harmless, else quoted.
func show(s string) string {
	if plainValRe.MatchString(s) {
		return s
	}
	return strconv.Quote(truncate(s))
}

// q quotes a name or string value for a message.
func q(s string) string { return strconv.Quote(truncate(s)) }

func truncate(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "..."
	}
	return s
}

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
			return "string " + q(n.Value)
		}
		return "value " + show(n.Value) + " tagged " + show(n.Tag)
	}
	return "an unresolved alias"
}

func (p *parser) typeErr(f field, want string) {
	f.errorf(p, "must be %s, got %s", want, describe(f.val))
}

// mapping is a checked YAML mapping: no duplicate, unknown or non-scalar keys.
type mapping struct {
	field
	fields []field
	byKey  map[string]field
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

func (p *parser) require(m *mapping, key string) (field, bool) {
	f, ok := m.byKey[key]
	if !ok {
		p.errMissing(m.field, join(m.path, key), "required")
	}
	return f, ok
}

// list checks that f is a list and returns its items as fields.
func (p *parser) list(f field, want string) ([]field, bool) {
	n := f.val
	if n == nil || n.Kind != yaml.SequenceNode {
		p.typeErr(f, want)
		return nil, false
	}
	out := make([]field, len(n.Content))
	for i, item := range n.Content {
		out[i] = field{path: index(f.path, i), line: item.Line, col: item.Column, val: deref(item)}
	}
	return out, true
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

// intIn reads an integer in [lo, hi].
func (p *parser) intIn(f field, lo, hi int64) (int, bool) {
	v, ok := p.integer(f)
	if !ok {
		return 0, false
	}
	if v < lo || v > hi {
		f.errorf(p, "%s is out of range (%d..%d)", show(f.val.Value), lo, hi)
		return 0, false
	}
	return int(v), true
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

// duration accepts Go duration syntax; "0" arrives as an integer and is a
// valid Go duration, so integers are tried too ("60", lacking a unit, is
// then reported as a bad duration rather than a wrong type).
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

// durationIn reads a duration in [lo, hi]; hi 0 means no upper bound.
func (p *parser) durationIn(f field, lo, hi time.Duration) (time.Duration, bool) {
	d, ok := p.duration(f)
	if !ok {
		return 0, false
	}
	if d < lo || (hi > 0 && d > hi) {
		if hi > 0 {
			f.errorf(p, "%s is out of range (%s..%s)", show(f.val.Value), fmtDur(lo), fmtDur(hi))
		} else {
			f.errorf(p, "%s is out of range (must be >= %s)", show(f.val.Value), fmtDur(lo))
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

// listenAddr reads a host:port to listen on and claims it, so two
// listeners cannot share it. Port 0 (any free port) is never a conflict.
func (p *parser) listenAddr(f field) (string, bool) {
	a, ok := p.hostPort(f, false)
	if !ok {
		return "", false
	}
	if _, port, _ := net.SplitHostPort(a); port != "0" {
		if prev, dup := p.addrs[a]; dup {
			f.errorf(p, "address %s is already used by %s", a, prev)
			return "", false
		}
		p.addrs[a] = f.path
	}
	return a, true
}

// hostPort checks host:port with a numeric port; a target (needHost) must
// name its host and a non-zero port, a listener may leave the host empty
// (all interfaces) or use port 0.
func (p *parser) hostPort(f field, needHost bool) (string, bool) {
	a, ok := p.str(f)
	if !ok {
		return "", false
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		f.errorf(p, "%s is not a valid address (host:port, e.g. 127.0.0.1:8080)", q(a))
		return "", false
	}
	n, err := strconv.Atoi(port)
	lo := 0
	if needHost {
		lo = 1
	}
	if err != nil || n < lo || n > 65535 || strings.HasPrefix(port, "+") {
		f.errorf(p, "%s: port %s is not a number from %d to 65535", q(a), q(port), lo)
		return "", false
	}
	if needHost && host == "" {
		f.errorf(p, "%s has no host (host:port, e.g. 127.0.0.1:9001)", q(a))
		return "", false
	}
	if strings.ContainsAny(host, " \t/") {
		f.errorf(p, "%s is not a valid address (host:port, e.g. 127.0.0.1:8080)", q(a))
		return "", false
	}
	return a, true
}

func (p *parser) zoneRef(f field, r *res) (string, bool) {
	z, ok := p.str(f)
	if !ok {
		return "", false
	}
	if r.zonesOK && !slices.Contains(r.zones, z) {
		f.errorf(p, "unknown zone %s (zones: %s)", q(z), strings.Join(r.zones, ", "))
		return "", false
	}
	return z, true
}

func (p *parser) config(root *yaml.Node) *Config {
	c := &Config{File: p.file, Listen: DefaultListen, DataDir: DefaultDataDir, Auth: Auth{OpenReads: true}}
	rf := field{line: root.Line, col: root.Column, val: deref(root)}
	if rf.val == nil || rf.val.Kind != yaml.MappingNode {
		p.errAt(rf.line, rf.col, "", "the top level must be a mapping (listen, data_dir, auth, resources), got %s", describe(rf.val))
		return c
	}
	m, _ := p.mapping(rf, topKeys)
	if f, ok := m.get("listen"); ok {
		c.Listen, _ = p.listenAddr(f)
	} else {
		p.addrs[DefaultListen] = "listen (default)"
	}
	if f, ok := m.get("data_dir"); ok {
		if v, ok := p.str(f); ok {
			if strings.TrimSpace(v) == "" {
				f.errorf(p, "must not be empty")
			}
			c.DataDir = v
		}
	}
	if f, ok := m.get("auth"); ok {
		p.auth(f, &c.Auth)
	}
	if f, ok := p.require(m, "resources"); ok {
		c.Resources = p.resources(f)
	}
	return c
}

func (p *parser) auth(f field, a *Auth) {
	m, ok := p.mapping(f, authKeys)
	if !ok {
		return
	}
	if tf, ok := m.get("tokens_file"); ok {
		if v, ok := p.str(tf); ok {
			if strings.TrimSpace(v) == "" {
				tf.errorf(p, "must not be empty (omit it for no tokens file)")
			} else {
				if !filepath.IsAbs(v) {
					v = filepath.Join(filepath.Dir(p.file), v)
				}
				a.TokensFile = v
			}
		}
	}
	if tf, ok := m.get("tokens"); ok {
		if items, ok := p.list(tf, "a list of tokens"); ok {
			first := map[string]int{}
			for _, it := range items {
				t, ok := p.str(it)
				if !ok {
					continue
				}
				if msg := tokenProblem(t); msg != "" {
					it.errorf(p, "%s", msg)
					continue
				}
				if l, dup := first[t]; dup {
					it.errorf(p, "duplicate token (first at line %d)", l)
					continue
				}
				first[t] = it.line
				a.Tokens = append(a.Tokens, t)
			}
		}
	}
	if of, ok := m.get("open_reads"); ok {
		if v, ok := p.boolean(of); ok {
			a.OpenReads = v
			_, hasFile := m.get("tokens_file")
			_, hasInline := m.get("tokens")
			if !v && !hasFile && !hasInline {
				of.errorf(p, "false, but no tokens are configured: nothing could use the API (set tokens_file)")
			}
		}
	}
}

func (p *parser) resources(f field) []Resource {
	items, ok := p.list(f, "a list of resources")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		f.errorf(p, "no resources (at least one is required)")
		return nil
	}
	var out []Resource
	names := map[string]int{}
	for _, it := range items {
		r := p.resource(it, names)
		out = append(out, r)
	}
	return out
}

func (p *parser) resource(f field, names map[string]int) Resource {
	var r Resource
	m, ok := p.mapping(f, resourceKeys)
	if !ok {
		return r
	}
	ctx := &res{}
	if nf, ok := p.require(m, "name"); ok {
		if v, ok := p.str(nf); ok {
			switch l, dup := names[v]; {
			case !nameRe.MatchString(v):
				nf.errorf(p, "%s is not a valid name ([a-z0-9-]{1,63})", q(v))
			case dup:
				nf.errorf(p, "duplicate resource name %s (first at line %d)", q(v), l)
			default:
				names[v] = nf.line
			}
			r.Name, ctx.name = v, v
		}
	}
	if zf, ok := p.require(m, "zones"); ok {
		r.Zones, ctx.zonesOK = p.zoneList(zf)
		ctx.zones = r.Zones
	}
	var capField field
	hasCap := false
	if cf, ok := m.get("min_capacity"); ok {
		if v, ok := p.intIn(cf, 0, 100000); ok {
			r.MinCapacity, capField, hasCap = v, cf, true
		}
	}
	fdOK := false
	var targetsField field
	if ff, ok := p.require(m, "frontdoor"); ok {
		r.FrontDoor, fdOK, targetsField = p.frontdoor(ff, ctx)
	}
	r.Operations = defaultOperations()
	if of, ok := m.get("operations"); ok {
		r.Operations = p.operations(of)
	}
	r.Detector = Detector{Profile: detect.ProfileDefault, FalseAlarmRate: DefaultFalseAlarmRate, MinInstances: DefaultMinInstances}
	var minInstField field
	hasMinInst := false
	if df, ok := m.get("detector"); ok {
		minInstField, hasMinInst = p.detector(df, &r.Detector)
	}
	if cf, ok := m.get("canaries"); ok {
		r.Canaries = p.canaries(cf, ctx)
	}
	r.Autoshift = Autoshift{Enabled: true, MinInterval: DefaultMinInterval, ExpiresIn: DefaultExpiresIn,
		ControlPlaneAfter: DefaultControlPlaneAfter, RecoveryHold: DefaultRecoveryHold}
	if af, ok := m.get("autoshift"); ok {
		p.autoshift(af, &r.Autoshift)
	}
	r.Practice = Practice{Config: practice.Config{Interval: DefaultPracticeInterval, Duration: DefaultPracticeDuration}}
	if pf, ok := m.get("practice"); ok {
		p.practice(pf, ctx, &r.Practice)
	}

	// Checks across sections, once the targets are known to be valid.
	if !fdOK || !ctx.zonesOK {
		return r
	}
	perZone := map[string]int{}
	for _, t := range r.FrontDoor.Targets {
		perZone[t.Zone]++
	}
	total := len(r.FrontDoor.Targets)
	for _, z := range r.Zones {
		if perZone[z] == 0 {
			p.errMissing(targetsField, targetsField.path, "zone %s has no targets", q(z))
			return r
		}
	}
	if hasCap {
		for _, z := range r.Zones {
			if left := total - perZone[z]; r.MinCapacity > left {
				capField.errorf(p, "%d can never be met: shifting away from %s leaves %d targets", r.MinCapacity, q(z), left)
				break
			}
		}
	}
	// A zone with fewer targets than min_instances can never show isolated
	// impact: the detector would watch it fail and never shift.
	for _, z := range r.Zones {
		if n := perZone[z]; n < r.Detector.MinInstances {
			if hasMinInst {
				minInstField.errorf(p, "%d exceeds the %d target(s) of zone %s: isolated impact could never be detected there", r.Detector.MinInstances, n, q(z))
			} else {
				targetsField.errorf(p, "zone %s has %d target(s), fewer than detector.min_instances (default %d): isolated impact could never be detected there; add targets or set detector.min_instances", q(z), n, DefaultMinInstances)
			}
			break
		}
	}
	return r
}

func (p *parser) zoneList(f field) ([]string, bool) {
	items, ok := p.list(f, "a list of zone ids")
	if !ok {
		return nil, false
	}
	if c := len(items); c < MinZones || c > MaxZones {
		f.errorf(p, "%d zone(s) given, need %d to %d", c, MinZones, MaxZones)
		ok = false
	}
	var zones []string
	for _, zf := range items {
		z, good := p.str(zf)
		switch {
		case !good:
			ok = false
		case !zoneRe.MatchString(z):
			zf.errorf(p, "%s is not a valid zone id ([a-z0-9-]{1,32})", q(z))
			ok = false
		case slices.Contains(zones, z):
			zf.errorf(p, "duplicate zone %s", q(z))
			ok = false
		default:
			zones = append(zones, z)
		}
	}
	return zones, ok
}

// frontdoor reads the front door; ok means its targets are complete and
// valid, so capacity can be checked against them.
func (p *parser) frontdoor(f field, r *res) (fd FrontDoor, ok bool, targets field) {
	fd.HealthCheck = HealthCheck{Path: DefaultHealthPath, Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout,
		HealthyThreshold: DefaultHealthyThreshold, UnhealthyThreshold: DefaultUnhealthyThreshold}
	m, good := p.mapping(f, frontdoorKeys)
	if !good {
		return fd, false, targets
	}
	if tf, ok := p.require(m, "type"); ok {
		if v, ok := p.str(tf); ok {
			if !slices.Contains(FrontDoorTypes, v) {
				tf.errorf(p, "unknown front door type %s (known: %s)", q(v), strings.Join(FrontDoorTypes, ", "))
			}
			fd.Type = v
		}
	}
	if rf, ok := p.require(m, "regional"); ok {
		fd.Regional, _ = p.listenAddr(rf)
	}
	if zf, ok := p.require(m, "zonal"); ok {
		fd.Zonal = p.zonal(zf, r)
	}
	tf, hasTargets := p.require(m, "targets")
	if hasTargets {
		fd.Targets, ok = p.targets(tf, r)
	}
	if hf, has := m.get("health_check"); has {
		p.healthCheck(hf, &fd.HealthCheck)
	}
	return fd, ok && hasTargets, tf
}

func (p *parser) zonal(f field, r *res) map[string]string {
	m, ok := p.mapping(f, nil)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for _, zf := range m.fields {
		if r.zonesOK && !slices.Contains(r.zones, zf.key) {
			zf.errorf(p, "unknown zone (zones: %s)", strings.Join(r.zones, ", "))
			continue
		}
		if a, ok := p.listenAddr(zf); ok {
			out[zf.key] = a
		}
	}
	if r.zonesOK {
		for _, z := range r.zones {
			if _, given := m.byKey[z]; !given {
				p.errMissing(f, join(f.path, z), "required (every zone needs a zonal endpoint)")
			}
		}
	}
	return out
}

func (p *parser) targets(f field, r *res) ([]Target, bool) {
	items, ok := p.list(f, "a list of targets ({id, zone, addr})")
	if !ok {
		return nil, false
	}
	if len(items) == 0 {
		f.errorf(p, "no targets (each zone needs at least one)")
		return nil, false
	}
	var out []Target
	ids := map[string]int{}
	addrs := map[string]int{}
	for _, it := range items {
		m, good := p.mapping(it, targetKeys)
		if !good {
			ok = false
			continue
		}
		var t Target
		if idf, good := p.require(m, "id"); good {
			if v, good := p.str(idf); good {
				switch l, dup := ids[v]; {
				case !targetRe.MatchString(v):
					idf.errorf(p, "%s is not a valid target id ([A-Za-z0-9._-]{1,63})", q(v))
					ok = false
				case dup:
					idf.errorf(p, "duplicate target id %s (first at line %d)", q(v), l)
					ok = false
				default:
					ids[v] = idf.line
				}
				t.ID = v
			} else {
				ok = false
			}
		} else {
			ok = false
		}
		if zf, good := p.require(m, "zone"); good {
			if t.Zone, good = p.zoneRef(zf, r); !good {
				ok = false
			}
		} else {
			ok = false
		}
		if af, good := p.require(m, "addr"); good {
			if a, good := p.hostPort(af, true); good {
				if l, dup := addrs[a]; dup {
					af.errorf(p, "duplicate target address %s (first at line %d)", a, l)
					ok = false
				} else if prev, used := p.addrs[a]; used {
					// The front door would proxy to itself.
					af.errorf(p, "address %s is a listen address (%s)", a, prev)
					ok = false
				} else {
					addrs[a] = af.line
				}
				t.Addr = a
			} else {
				ok = false
			}
		} else {
			ok = false
		}
		out = append(out, t)
	}
	return out, ok
}

func (p *parser) healthCheck(f field, h *HealthCheck) {
	m, ok := p.mapping(f, healthKeys)
	if !ok {
		return
	}
	if pf, ok := m.get("path"); ok {
		if v, ok := p.str(pf); ok {
			if u, err := url.Parse(v); err != nil || !strings.HasPrefix(v, "/") || u.Host != "" || strings.ContainsAny(v, " \t#") {
				pf.errorf(p, "%s is not a URL path (e.g. /health)", q(v))
			} else {
				h.Path = v
			}
		}
	}
	if inf, ok := m.get("interval"); ok {
		if d, ok := p.durationIn(inf, 100*time.Millisecond, 5*time.Minute); ok {
			h.Interval = d
		}
	}
	if tf, ok := m.get("timeout"); ok {
		if d, ok := p.durationIn(tf, time.Millisecond, 5*time.Minute); ok {
			// A check still running when the next is due would pile up.
			if d > h.Interval {
				tf.errorf(p, "%s is longer than the interval (%s)", show(tf.val.Value), fmtDur(h.Interval))
			} else {
				h.Timeout = d
			}
		}
	}
	if hf, ok := m.get("healthy_threshold"); ok {
		if v, ok := p.intIn(hf, 1, 10); ok {
			h.HealthyThreshold = v
		}
	}
	if uf, ok := m.get("unhealthy_threshold"); ok {
		if v, ok := p.intIn(uf, 1, 10); ok {
			h.UnhealthyThreshold = v
		}
	}
}

func (p *parser) operations(f field) map[string]time.Duration {
	m, ok := p.mapping(f, nil)
	if !ok {
		return nil
	}
	if len(m.fields) == 0 && len(f.val.Content) == 0 {
		f.errorf(p, "names no operation (omit operations for the workshop's: %s)", strings.Join(operation.Names(), ", "))
		return nil
	}
	out := map[string]time.Duration{}
	for _, of := range m.fields {
		if !opRe.MatchString(of.key) {
			of.errorf(p, "%s is not a valid operation name ([a-z0-9_-]{1,63})", q(of.key))
			continue
		}
		om, ok := p.mapping(of, operationKeys)
		if !ok {
			continue
		}
		if tf, ok := p.require(om, "latency_threshold"); ok {
			if d, ok := p.durationIn(tf, time.Millisecond, time.Minute); ok {
				out[of.key] = d
			}
		}
	}
	return out
}

func (p *parser) detector(f field, d *Detector) (minInst field, has bool) {
	m, ok := p.mapping(f, detectorKeys)
	if !ok {
		return field{}, false
	}
	if pf, ok := m.get("profile"); ok {
		if v, ok := p.str(pf); ok {
			if !slices.Contains(detect.Profiles, v) {
				pf.errorf(p, "unknown profile %s (known: %s)", q(v), strings.Join(detect.Profiles, ", "))
			} else {
				d.Profile = v
			}
		}
	}
	if ff, ok := m.get("false_alarm_rate"); ok {
		if v, ok := p.number(ff); ok {
			if v <= 0 || v >= 1 {
				ff.errorf(p, "%s is out of range (0 < rate < 1)", show(ff.val.Value))
			} else {
				d.FalseAlarmRate = v
			}
		}
	}
	if of, ok := m.get("outlier"); ok {
		if v, ok := p.str(of); ok {
			if meth, err := outlier.ParseMethod(v); err != nil {
				of.errorf(p, "unknown outlier method %s (known: static, chi-squared, z-score, iqr, mad)", q(v))
			} else {
				d.Outlier.Method = meth
			}
		}
	}
	if tf, ok := m.get("outlier_threshold"); ok {
		if v, ok := p.number(tf); ok {
			if v <= 0 || math.IsInf(v, 0) {
				tf.errorf(p, "%s must be a positive number", show(tf.val.Value))
			} else if d.Outlier.Method == "" {
				tf.errorf(p, "needs detector.outlier (the method the threshold is for)")
			} else {
				d.Outlier.Threshold = v
			}
		}
	}
	if mf, ok := m.get("min_instances"); ok {
		if v, ok := p.intIn(mf, 1, 1000); ok {
			d.MinInstances = v
			return mf, true
		}
	}
	return field{}, false
}

func (p *parser) canaries(f field, r *res) []Canary {
	items, ok := p.list(f, "a list of canaries ({zone, url, interval})")
	if !ok {
		return nil
	}
	var out []Canary
	seen := map[[2]string]int{}
	for _, it := range items {
		m, ok := p.mapping(it, canaryKeys)
		if !ok {
			continue
		}
		c := Canary{Interval: DefaultCanaryInterval}
		if zf, ok := p.require(m, "zone"); ok {
			c.Zone, _ = p.zoneRef(zf, r)
		}
		if uf, ok := p.require(m, "url"); ok {
			if v, ok := p.str(uf); ok {
				u, err := url.Parse(v)
				switch {
				case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
					uf.errorf(p, "%s is not an http(s) URL (e.g. http://127.0.0.1:8091)", q(v))
				default:
					k := [2]string{c.Zone, v}
					if l, dup := seen[k]; dup && c.Zone != "" {
						uf.errorf(p, "duplicate canary for zone %s and this url (first at line %d)", q(c.Zone), l)
					}
					seen[k] = it.line
					c.URL = v
				}
			}
		}
		if inf, ok := m.get("interval"); ok {
			if d, ok := p.durationIn(inf, 100*time.Millisecond, time.Hour); ok {
				c.Interval = d
			}
		}
		out = append(out, c)
	}
	return out
}

func (p *parser) autoshift(f field, a *Autoshift) {
	m, ok := p.mapping(f, autoshiftKeys)
	if !ok {
		return
	}
	for _, b := range []struct {
		key string
		to  *bool
	}{{"enabled", &a.Enabled}, {"dry_run", &a.DryRun}, {"approval", &a.Approval}} {
		if bf, ok := m.get(b.key); ok {
			if v, ok := p.boolean(bf); ok {
				*b.to = v
			}
		}
	}
	if a.DryRun && a.Approval {
		af, _ := m.get("approval")
		af.errorf(p, "true with dry_run: true, but a dry run acts on nothing, so there is nothing to approve")
	}
	for _, d := range []struct {
		key    string
		to     *time.Duration
		lo, hi time.Duration
	}{
		{"min_interval", &a.MinInterval, 0, 0},
		{"expires_in", &a.ExpiresIn, time.Minute, 72 * time.Hour},
		{"control_plane_after", &a.ControlPlaneAfter, 0, 0},
		{"recovery_hold", &a.RecoveryHold, 0, 0},
	} {
		if df, ok := m.get(d.key); ok {
			if v, ok := p.durationIn(df, d.lo, d.hi); ok {
				*d.to = v
			}
		}
	}
}

func (p *parser) practice(f field, r *res, pr *Practice) {
	m, ok := p.mapping(f, practiceKeys)
	if !ok {
		return
	}
	if ef, ok := m.get("enabled"); ok {
		pr.Enabled, _ = p.boolean(ef)
	}
	if inf, ok := m.get("interval"); ok {
		if d, ok := p.durationIn(inf, time.Hour, 0); ok {
			pr.Interval = d
		}
	}
	if df, ok := m.get("duration"); ok {
		if d, ok := p.durationIn(df, time.Minute, 72*time.Hour); ok {
			if d >= pr.Interval {
				df.errorf(p, "%s is not shorter than the interval (%s)", show(df.val.Value), fmtDur(pr.Interval))
			} else {
				pr.Duration = d
			}
		}
	}
	outcome := map[string]bool{}
	if of, ok := m.get("outcome_alarms"); ok {
		pr.OutcomeAlarms = p.alarmList(of, r, nil)
		for _, a := range pr.OutcomeAlarms {
			outcome[a] = true
		}
	}
	if pr.Enabled && len(pr.OutcomeAlarms) == 0 {
		if _, given := m.get("outcome_alarms"); !given {
			p.errMissing(f, join(f.path, "outcome_alarms"), "required when practice is enabled (a run is judged by its outcome alarms)")
		} else if of := m.byKey["outcome_alarms"]; of.val.Kind == yaml.SequenceNode && len(of.val.Content) == 0 {
			of.errorf(p, "empty, but practice is enabled (a run is judged by its outcome alarms)")
		}
	}
	if bf, ok := m.get("blocking_alarms"); ok {
		pr.BlockingAlarms = p.alarmList(bf, r, outcome)
	}
	if wf, ok := m.get("blocked_windows"); ok {
		if items, ok := p.list(wf, `a list of windows ("Day:HH:MM-Day:HH:MM", UTC)`); ok {
			seen := map[practice.Window]int{}
			for _, it := range items {
				v, ok := p.str(it)
				if !ok {
					continue
				}
				w, err := practice.ParseWindow(v)
				if err != nil {
					it.errorf(p, "%v", err)
					continue
				}
				if l, dup := seen[w]; dup {
					it.errorf(p, "duplicate window %s (first at line %d)", w, l)
					continue
				}
				seen[w] = it.line
				pr.BlockedWindows = append(pr.BlockedWindows, w)
			}
		}
	}
	if df, ok := m.get("blocked_dates"); ok {
		if items, ok := p.list(df, `a list of dates ("YYYY-MM-DD", UTC)`); ok {
			seen := map[practice.Date]int{}
			for _, it := range items {
				// Unquoted, 2026-12-24 is a YAML timestamp: take its text.
				if !isScalar(it.val, "!!str", "!!timestamp") {
					p.typeErr(it, "a string")
					continue
				}
				v := it.val.Value
				d, err := practice.ParseDate(v)
				if err != nil {
					it.errorf(p, "%v", err)
					continue
				}
				if l, dup := seen[d]; dup {
					it.errorf(p, "duplicate date %s (first at line %d)", d, l)
					continue
				}
				seen[d] = it.line
				pr.BlockedDates = append(pr.BlockedDates, d)
			}
		}
	}
}

// alarmList reads a list of alarm names of the resource; other holds the
// names of the other list (an alarm cannot both judge and block a run).
func (p *parser) alarmList(f field, r *res, other map[string]bool) []string {
	items, ok := p.list(f, "a list of alarm names")
	if !ok {
		return nil
	}
	valid := AlarmNames(r.zones)
	var out []string
	for _, it := range items {
		v, ok := p.str(it)
		if !ok {
			continue
		}
		switch {
		case r.zonesOK && !slices.Contains(valid, v):
			it.errorf(p, "unknown alarm %s (valid: %s, ...)", q(v), strings.Join(valid[:4], ", "))
		case slices.Contains(out, v):
			it.errorf(p, "duplicate alarm %s", q(v))
		case other[v]:
			it.errorf(p, "alarm %s is also an outcome alarm (an alarm either judges a run or blocks it)", q(v))
		default:
			out = append(out, v)
		}
	}
	return out
}
