package batch

import (
	"math"
	"strconv"
	"sync"
	"time"
	"unsafe"
)

// The batch endpoint's fast path. encoding/json was 80 % of the cost of an
// aggregated batch (the body into raw messages, then each record again
// with a strict decoder of its own, so that an error can name the record).
// A fleet's shippers (the middleware, the lab, a team's own) send batches
// of one plain shape, so that shape is read here in one pass, names
// interned, nothing but the records allocated. Anything else (escapes,
// non-ASCII, keys in another case or unknown, duplicate keys, nulls, single
// observations, numbers JSON allows but the shape does not, anything not
// valid JSON) and the scanner gives up, and the strict encoding/json path
// reads the batch, with its exact errors. Both paths end in the same
// validation (convertAggregates, ConvertAggregate), and FuzzAggregateBatch
// checks that they agree wherever the fast one answers.

// batchScanner reads one batch; scanners are reused.
type batchScanner struct {
	b     []byte
	i     int
	names map[string]string
	ins   []AggregateIn
	lat   [][2]float64 // the records' histograms, one array
	slows []uint64
}

var scanners = sync.Pool{New: func() any { return &batchScanner{names: map[string]string{}} }}

// maxScannerNames bounds the names a pooled scanner keeps interned.
const maxScannerNames = 50_000

func getScanner() *batchScanner { return scanners.Get().(*batchScanner) }

// put returns the scanner to the pool; its records must not be used after.
func (s *batchScanner) put() {
	clear(s.ins)
	s.ins, s.lat, s.slows, s.b = s.ins[:0], s.lat[:0], s.slows[:0], nil
	if len(s.names) > maxScannerNames {
		s.names = map[string]string{}
	}
	scanners.Put(s)
}

// Aggregate records' keys, as bits of a set (each may appear once).
const (
	keyAt = 1 << iota
	keySource
	keyZone
	keyInstance
	keyOperation
	keyRequests
	keyFaults
	keyErrors
	keySlow
	keyLatency
)

// scan reads data as {"resource": "...", "aggregates": [{...}, ...]}, in
// either order, with nothing else; false: not that shape.
func (s *batchScanner) scan(data []byte) (resource string, ok bool) {
	s.b, s.i = data, 0
	seen := 0
	ok = s.object(func(key string) (ok bool) {
		switch {
		case key == "resource" && seen&1 == 0:
			seen |= 1
			resource, ok = s.name()
			return ok
		case key == "aggregates" && seen&2 == 0:
			seen |= 2
			return s.array(s.aggregate)
		}
		return false
	})
	s.ws()
	return resource, ok && seen == 3 && s.i == len(s.b) && len(s.ins) > 0
}

// object reads {"key": value, ...}, value reading each key's value.
func (s *batchScanner) object(value func(key string) bool) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	for {
		key, ok := s.str()
		if !ok || !s.byte(':') || !value(key) {
			return false
		}
		if !s.byte(',') {
			return s.byte('}')
		}
	}
}

// array reads [element, ...], element reading each.
func (s *batchScanner) array(element func() bool) bool {
	if !s.byte('[') {
		return false
	}
	if s.byte(']') {
		return true
	}
	for {
		if !element() {
			return false
		}
		if !s.byte(',') {
			return s.byte(']')
		}
	}
}

// aggregate reads one record onto s.ins.
func (s *batchScanner) aggregate() bool {
	var in AggregateIn
	seen := 0
	ok := s.object(func(key string) (ok bool) {
		bit := 0
		switch key {
		case "at":
			bit = keyAt
			s.ws()
			start := s.i
			if _, ok := s.str(); !ok {
				return false
			}
			var t time.Time
			if t.UnmarshalJSON(s.b[start:s.i]) != nil {
				return false
			}
			in.At, ok = &t, true
		case "source":
			bit = keySource
			in.Source, ok = s.name()
		case "zone":
			bit = keyZone
			in.Zone, ok = s.name()
		case "instance":
			bit = keyInstance
			in.Instance, ok = s.name()
		case "operation":
			bit = keyOperation
			in.Operation, ok = s.name()
		case "requests":
			bit = keyRequests
			in.Requests, ok = s.uint()
		case "faults":
			bit = keyFaults
			in.Faults, ok = s.uint()
		case "errors":
			bit = keyErrors
			in.Errors, ok = s.uint()
		case "slow":
			bit = keySlow
			var v uint64
			if v, ok = s.uint(); ok {
				s.slows = append(s.slows, v)
				in.Slow = &s.slows[len(s.slows)-1] // an earlier array stays valid if this one grows
			}
		case "latency_ms":
			bit = keyLatency
			ok = s.latency(&in)
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
	if ok {
		s.ins = append(s.ins, in)
	}
	return ok
}

// latency reads [[ms, count], ...]: pairs only (encoding/json would drop a
// third element or zero a missing one: the strict path decides those).
func (s *batchScanner) latency(in *AggregateIn) bool {
	start := len(s.lat)
	ok := s.array(func() (ok bool) {
		var p [2]float64
		if !s.byte('[') {
			return false
		}
		if p[0], ok = s.float(); !ok || !s.byte(',') {
			return false
		}
		if p[1], ok = s.float(); !ok || !s.byte(']') {
			return false
		}
		s.lat = append(s.lat, p)
		return true
	})
	if ok && len(s.lat) > start {
		// A slice of the array as it is now: if a later record makes it
		// grow, this one still holds these values.
		in.LatencyMs = s.lat[start:len(s.lat):len(s.lat)]
	}
	return ok
}

// ws skips JSON whitespace.
func (s *batchScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte skips whitespace and c, if c is next.
func (s *batchScanner) byte(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a plain string: printable ASCII, no escapes. The result
// aliases the body.
func (s *batchScanner) str() (string, bool) {
	if !s.byte('"') {
		return "", false
	}
	start := s.i
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return unsafeString(v), true
		case c < 0x20 || c >= 0x80 || c == '\\':
			return "", false
		}
	}
	return "", false
}

// name reads a string the records keep (zone, instance, ...), interned.
func (s *batchScanner) name() (string, bool) {
	v, ok := s.str()
	if !ok {
		return "", false
	}
	if n, ok := s.names[v]; ok {
		return n, true
	}
	n := string([]byte(v)) // a copy: v aliases the body
	s.names[n] = n
	return n, true
}

// uint reads an unsigned integer of up to 19 digits (no sign, fraction,
// exponent or leading zero: those take the strict path).
func (s *batchScanner) uint() (uint64, bool) {
	s.ws()
	start := s.i
	v, n := s.digits(0)
	if n == 0 || n > 19 || (n > 1 && s.b[start] == '0') {
		return 0, false
	}
	return v, s.numberEnds()
}

// digits reads a run of decimal digits onto v (v*10 + each; it wraps past
// 19 digits, which callers check) and says how many there were.
func (s *batchScanner) digits(v uint64) (uint64, int) {
	n := 0
	for ; s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9'; s.i++ {
		v = 10*v + uint64(s.b[s.i]-'0')
		n++
	}
	return v, n
}

// numberEnds says whether a number token ends here, as JSON requires.
func (s *batchScanner) numberEnds() bool {
	if s.i == len(s.b) {
		return true
	}
	switch s.b[s.i] {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// float reads a non-negative JSON number. Up to 15 significant digits and
// 22 decimals with no exponent, the value is computed exactly as
// strconv.ParseFloat rounds it (both the digits and the power of ten are
// exact doubles, and IEEE division rounds correctly); other numbers go to
// ParseFloat itself.
func (s *batchScanner) float() (float64, bool) {
	s.ws()
	start := s.i
	mant, digits := s.digits(0)
	if digits == 0 || (digits > 1 && s.b[start] == '0') {
		return 0, false // no digits, or a leading zero
	}
	decimals := 0
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if mant, decimals = s.digits(mant); decimals == 0 {
			return 0, false
		}
		digits += decimals
	}
	exp := false
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		exp = true
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if _, n := s.digits(0); n == 0 {
			return 0, false
		}
	}
	if !s.numberEnds() {
		return 0, false
	}
	if !exp && digits <= 15 && decimals <= 22 {
		return float64(mant) / pow10[decimals], true
	}
	v, err := strconv.ParseFloat(string(s.b[start:s.i]), 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// pow10 are the powers of ten that are exact doubles.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// unsafeString views b as a string without copying: for keys compared and
// names looked up, never kept.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
