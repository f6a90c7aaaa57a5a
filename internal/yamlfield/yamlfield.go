// Package yamlfield is strict, line-numbered decoding of YAML mappings into
// Go values, with one-line FILE:LINE: key.path: message errors.
//
// A Decoder walks the yaml.Node tree of one file. Each value comes as a
// Field: the value together with its key path and the line of its key (or
// list item). Checks record problems on the Decoder rather than stopping at
// the first, because a format's checks run in dependency order (say, zones
// before what refers to them), not in file order; Err then returns the
// problem that comes first in the file.
package yamlfield

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

	"github.com/grayzone/grayzone/internal/duration"
)

// Error is one problem in a file.
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

var (
	// plainKeyRe: keys that can be shown as .key in a path; anything else is
	// shown quoted, so a path never breaks the one-line error format.
	plainKeyRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	plainValRe = regexp.MustCompile(`^[A-Za-z0-9_.:+-]{1,40}$`)
	yamlLineRe = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)
)

// Decoder decodes one file and collects its problems.
type Decoder struct {
	// File labels errors.
	File string
	// CollapseSpace turns each run of white space in a message into one
	// space, for formats whose messages quote text from elsewhere (another
	// package's errors) that might hold a newline. Values shown with Show or
	// Quote never do.
	CollapseSpace bool

	errs []*Error
}

// Field is a value together with where it is used: the line of its key (or
// of its list item), which is where errors about the value point, even when
// the value is an alias to an anchor elsewhere.
type Field struct {
	Path      string
	Key       string // the key, for values in a mapping
	Line, Col int
	Val       *yaml.Node // aliases already resolved
}

// Document decodes data, which must hold one YAML document, and returns the
// top-level value of that document. An empty file (empty says what was
// expected) or invalid YAML is returned as an *Error at once. If the file
// holds another document, second is its node: an error for the caller to
// record, once the first is checked, so that it is reported in order.
func (d *Decoder) Document(data []byte, empty string) (root Field, second *yaml.Node, err error) {
	// yaml.v3 signals errors with panics it recovers itself; should one ever
	// escape, a bad file must still be an ordinary error, not a crash.
	defer func() {
		if r := recover(); r != nil {
			root, second = Field{}, nil
			err = d.syntaxError(data, fmt.Sprint(r))
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return Field{}, nil, &Error{File: d.File, Line: 1, Msg: empty}
		}
		return Field{}, nil, d.syntaxError(data, err.Error())
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || IsScalar(doc.Content[0], "!!null") {
		return Field{}, nil, &Error{File: d.File, Line: max(doc.Line, 1), Msg: empty}
	}
	top := doc.Content[0]
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		// A broken second document is still a syntax error.
		return Field{}, nil, d.syntaxError(data, err.Error())
	default:
		second = &next
	}
	return Field{Line: top.Line, Col: top.Column, Val: Deref(top)}, second, nil
}

// Err returns the recorded problem that comes first in the file, as an
// *Error, or nil if there is none.
func (d *Decoder) Err() error {
	if len(d.errs) == 0 {
		return nil
	}
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i], d.errs[j]
		if a.sortLine != b.sortLine {
			return a.sortLine < b.sortLine
		}
		return a.sortCol < b.sortCol
	})
	return d.errs[0]
}

// syntaxError turns the YAML library's message ("yaml: line N: problem", or
// without a line for some problems) into FILE:LINE: invalid YAML: problem.
func (d *Decoder) syntaxError(data []byte, msg string) *Error {
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
	return &Error{File: d.File, Line: line, Msg: "invalid YAML: " + oneLine(msg)}
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

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func (d *Decoder) msg(format string, args []any) string {
	m := fmt.Sprintf(format, args...)
	if d.CollapseSpace {
		m = oneLine(m)
	}
	return m
}

// ErrAt records a problem at line and column; path may be empty.
func (d *Decoder) ErrAt(line, col int, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.File, Line: line, Path: path, Msg: d.msg(format, args), sortLine: line, sortCol: col})
}

// Errorf records a problem with f's value.
func (d *Decoder) Errorf(f Field, format string, args ...any) {
	d.ErrAt(f.Line, f.Col, f.Path, format, args...)
}

// Missing records something missing from f (path names it): at f's line,
// sorted after everything f contains.
func (d *Decoder) Missing(f Field, path, format string, args ...any) {
	line, col := endPos(f.Val)
	if line < f.Line {
		line, col = f.Line, f.Col
	}
	d.errs = append(d.errs, &Error{File: d.File, Line: f.Line, Path: path, Msg: d.msg(format, args), sortLine: line, sortCol: col + 1})
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

// TypeErr records that f's value is not what was wanted: "must be WANT, got
// WHAT IT IS".
func (d *Decoder) TypeErr(f Field, want string) {
	d.Errorf(f, "must be %s, got %s", want, Describe(f.Val))
}

// Deref follows aliases. The bound guards against anything cyclic; the
// library does not produce alias chains, but costs nothing to be safe.
func Deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// Join is the path of key under path: path.key, or path["odd key"] for a
// key that is not a plain word.
func Join(path, key string) string {
	if !plainKeyRe.MatchString(key) {
		return path + "[" + Show(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// Index is the path of item i of the list at path: path[i].
func Index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// Show renders user text for a message: plain when harmless, else quoted
// (which also escapes newlines) and shortened.
func Show(s string) string {
	if plainValRe.MatchString(s) {
		return s
	}
	return Quote(s)
}

// Quote quotes a name or string value for a message, shortened.
func Quote(s string) string { return strconv.Quote(truncate(s)) }

func truncate(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "..."
	}
	return s
}

// Describe says what a node is, for "must be X, got Y" messages.
func Describe(n *yaml.Node) string {
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
			return "boolean " + Show(n.Value)
		case "!!int":
			return "integer " + Show(n.Value)
		case "!!float":
			return "number " + Show(n.Value)
		case "!!str":
			return "string " + Quote(n.Value)
		}
		return "value " + Show(n.Value) + " tagged " + Show(n.Tag)
	}
	return "an unresolved alias"
}

// IsScalar reports whether n is a scalar with one of tags ("!!str", ...).
func IsScalar(n *yaml.Node, tags ...string) bool {
	return n != nil && n.Kind == yaml.ScalarNode && slices.Contains(tags, n.ShortTag())
}

// Mapping is a checked YAML mapping: no duplicate, unknown or non-scalar keys.
type Mapping struct {
	Field
	Fields []Field // in document order
	byKey  map[string]Field
}

// Get returns the value of key, if given.
func (m *Mapping) Get(key string) (Field, bool) {
	f, ok := m.byKey[key]
	return f, ok
}

// Mapping checks that f is a mapping whose keys are among known (any key
// when known is nil; the caller then checks them). Duplicate, unknown and
// non-scalar keys are recorded as problems and left out of the result.
func (d *Decoder) Mapping(f Field, known []string) (*Mapping, bool) {
	n := f.Val
	if n == nil || n.Kind != yaml.MappingNode {
		d.TypeErr(f, "a mapping")
		return nil, false
	}
	m := &Mapping{Field: f, byKey: map[string]Field{}}
	firstLine := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := Deref(n.Content[i])
		kn := n.Content[i]
		if k == nil || k.Kind != yaml.ScalarNode {
			d.ErrAt(kn.Line, kn.Column, f.Path, "keys must be plain words, got %s as a key", Describe(k))
			continue
		}
		c := Field{Path: Join(f.Path, k.Value), Key: k.Value, Line: kn.Line, Col: kn.Column, Val: Deref(n.Content[i+1])}
		if l, dup := firstLine[k.Value]; dup {
			d.Errorf(c, "duplicate key (first given at line %d)", l)
			continue
		}
		firstLine[k.Value] = kn.Line
		if known != nil && !slices.Contains(known, k.Value) {
			d.Errorf(c, "unknown key (expected one of %s)", strings.Join(known, ", "))
			continue
		}
		m.Fields = append(m.Fields, c)
		m.byKey[k.Value] = c
	}
	return m, true
}

// Require returns the value of key, recording it as missing (at the line of
// the mapping that lacks it) if not given.
func (d *Decoder) Require(m *Mapping, key string) (Field, bool) {
	f, ok := m.byKey[key]
	if !ok {
		d.Missing(m.Field, Join(m.Path, key), "required")
	}
	return f, ok
}

// List checks that f is a list (want says of what, for the type error) and
// returns its items.
func (d *Decoder) List(f Field, want string) ([]Field, bool) {
	n := f.Val
	if n == nil || n.Kind != yaml.SequenceNode {
		d.TypeErr(f, want)
		return nil, false
	}
	out := make([]Field, len(n.Content))
	for i, item := range n.Content {
		out[i] = Field{Path: Index(f.Path, i), Line: item.Line, Col: item.Column, Val: Deref(item)}
	}
	return out, true
}

// Str reads a string.
func (d *Decoder) Str(f Field) (string, bool) {
	if !IsScalar(f.Val, "!!str") {
		d.TypeErr(f, "a string")
		return "", false
	}
	return f.Val.Value, true
}

// Integer reads an integer that fits an int64.
func (d *Decoder) Integer(f Field) (int64, bool) {
	var v int64
	if !IsScalar(f.Val, "!!int") || f.Val.Decode(&v) != nil {
		d.TypeErr(f, "an integer")
		return 0, false
	}
	return v, true
}

// IntIn reads an integer in [lo, hi].
func (d *Decoder) IntIn(f Field, lo, hi int64) (int, bool) {
	v, ok := d.Integer(f)
	if !ok {
		return 0, false
	}
	if v < lo || v > hi {
		d.Errorf(f, "%s is out of range (%d..%d)", Show(f.Val.Value), lo, hi)
		return 0, false
	}
	return int(v), true
}

// Number reads a finite number, integer or not.
func (d *Decoder) Number(f Field) (float64, bool) {
	var v float64
	if !IsScalar(f.Val, "!!int", "!!float") || f.Val.Decode(&v) != nil {
		d.TypeErr(f, "a number")
		return 0, false
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		d.Errorf(f, "%s is not a finite number", Show(f.Val.Value))
		return 0, false
	}
	return v, true
}

// Boolean reads true or false.
func (d *Decoder) Boolean(f Field) (bool, bool) {
	var v bool
	if !IsScalar(f.Val, "!!bool") || f.Val.Decode(&v) != nil {
		d.TypeErr(f, "true or false")
		return false, false
	}
	return v, true
}

// Duration reads Go duration syntax. "0" comes out of YAML as an integer and
// is a valid Go duration, so integers are tried too (and "60", lacking a
// unit, is then reported as a bad duration rather than a wrong type).
func (d *Decoder) Duration(f Field) (time.Duration, bool) {
	if !IsScalar(f.Val, "!!str", "!!int", "!!float") {
		d.TypeErr(f, "a duration (e.g. 90s, 2m)")
		return 0, false
	}
	v, err := time.ParseDuration(f.Val.Value)
	if err != nil {
		d.Errorf(f, "%s is not a valid duration (Go syntax with a unit, e.g. 90s, 2m, 1h30m)", Show(f.Val.Value))
		return 0, false
	}
	return v, true
}

// DurationIn reads a duration in [lo, hi]; hi 0 means no upper bound.
func (d *Decoder) DurationIn(f Field, lo, hi time.Duration) (time.Duration, bool) {
	v, ok := d.Duration(f)
	if !ok {
		return 0, false
	}
	if v < lo || (hi > 0 && v > hi) {
		if hi > 0 {
			d.Errorf(f, "%s is out of range (%s..%s)", Show(f.Val.Value), duration.Format(lo), duration.Format(hi))
		} else {
			d.Errorf(f, "%s is out of range (must be >= %s)", Show(f.Val.Value), duration.Format(lo))
		}
		return 0, false
	}
	return v, true
}
