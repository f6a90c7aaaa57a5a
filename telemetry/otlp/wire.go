package otlp

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// The receiver reads OTLP's protobuf straight off the wire: pdata would
// build an object per resource, metric, data point and attribute, copy
// every string and slice into them, and leave all of it to the garbage
// collector, which was half of the receiver's cost per point. Here a data
// point's fields are read in place from the request body into the
// converter's scratch space, and the only strings kept (zone, instance,
// route) are interned. The field numbers are those of
// opentelemetry/proto/collector/metrics/v1/metrics_service.proto and
// opentelemetry/proto/metrics/v1/metrics.proto; the receiver accepts what a
// protobuf parser must (fields in any order, unknown fields, packed or
// unpacked repeated scalars, the last of repeated singular fields).

// Field numbers grayzone reads.
const (
	fieldResourceMetrics = 1 // ExportMetricsServiceRequest.resource_metrics

	fieldResource     = 1 // ResourceMetrics.resource
	fieldScopeMetrics = 2 // ResourceMetrics.scope_metrics

	fieldResourceAttributes = 1 // Resource.attributes

	fieldMetrics = 2 // ScopeMetrics.metrics

	fieldMetricName      = 1
	fieldMetricUnit      = 3
	fieldMetricGauge     = 5
	fieldMetricSum       = 7
	fieldMetricHistogram = 9
	fieldMetricExpHist   = 10
	fieldMetricSummary   = 11

	fieldDataPoints  = 1 // Sum.data_points, Histogram.data_points
	fieldTemporality = 2 // Sum/Histogram.aggregation_temporality
	fieldMonotonic   = 3 // Sum.is_monotonic

	fieldPointStart = 2 // start_time_unix_nano, both point types
	fieldPointTime  = 3 // time_unix_nano, both point types

	fieldNumberDouble = 4
	fieldNumberInt    = 6
	fieldNumberAttrs  = 7

	fieldHistCount   = 4
	fieldHistBuckets = 6
	fieldHistBounds  = 7
	fieldHistAttrs   = 9

	fieldKey   = 1 // KeyValue.key
	fieldValue = 2 // KeyValue.value

	fieldAnyString = 1
	fieldAnyBool   = 2
	fieldAnyInt    = 3
	fieldAnyDouble = 4
	fieldAnyArray  = 5
	fieldAnyKVList = 6
	fieldAnyBytes  = 7
)

// metricType is the kind of a metric's data, named as pdata names it.
type metricType uint8

const (
	typeEmpty metricType = iota
	typeGauge
	typeSum
	typeHistogram
	typeExponentialHistogram
	typeSummary
)

func (t metricType) String() string {
	return [...]string{"Empty", "Gauge", "Sum", "Histogram", "ExponentialHistogram", "Summary"}[t]
}

// field is one field of a message, read in place.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64 // a varint, fixed32 or fixed64 value
	b   []byte // a length-delimited value (aliases the body)
}

var errMalformed = errors.New("malformed protobuf")

// next reads the field at the start of b and returns the rest.
func next(b []byte) (field, []byte, error) {
	// The fast path: a one-byte tag (fields 1 to 15) and a one- or two-byte
	// varint or length, or a fixed64, which is nearly every field of an
	// OTLP export; anything else takes protowire's general path.
	if len(b) >= 2 && b[0] < 0x80 && b[0] >= 8 {
		num, typ := protowire.Number(b[0]>>3), protowire.Type(b[0]&7)
		switch typ {
		case protowire.BytesType:
			n, h := int(b[1]), 2
			if n >= 0x80 {
				if len(b) < 3 || b[2] >= 0x80 {
					break
				}
				n, h = n&0x7f|int(b[2])<<7, 3
			}
			if len(b)-h >= n {
				return field{num: num, typ: typ, b: b[h : h+n : h+n]}, b[h+n:], nil
			}
		case protowire.Fixed64Type:
			if len(b) >= 9 {
				return field{num: num, typ: typ, v: binary.LittleEndian.Uint64(b[1:])}, b[9:], nil
			}
		case protowire.VarintType:
			if b[1] < 0x80 {
				return field{num: num, typ: typ, v: uint64(b[1])}, b[2:], nil
			}
		}
	}
	return nextSlow(b)
}

// nextSlow is next's general path.
func nextSlow(b []byte) (field, []byte, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return field{}, nil, fmt.Errorf("%w: %v", errMalformed, protowire.ParseError(n))
	}
	b = b[n:]
	f := field{num: num, typ: typ}
	switch typ {
	case protowire.VarintType:
		f.v, n = protowire.ConsumeVarint(b)
	case protowire.Fixed64Type:
		f.v, n = protowire.ConsumeFixed64(b)
	case protowire.Fixed32Type:
		var v uint32
		v, n = protowire.ConsumeFixed32(b)
		f.v = uint64(v)
	case protowire.BytesType:
		f.b, n = protowire.ConsumeBytes(b)
	default:
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		return field{}, nil, fmt.Errorf("%w: field %d: %v", errMalformed, num, protowire.ParseError(n))
	}
	return f, b[n:], nil
}

// each calls f with the value of every occurrence of the length-delimited
// field num of msg, in order. Its own errors (malformed protobuf) it names
// with where; f's it returns as they are.
func each(msg []byte, num protowire.Number, where fmt.Stringer, f func(b []byte) error) error {
	for b := msg; len(b) > 0; {
		fd, rest, err := next(b)
		if err != nil {
			return wrap(where, err)
		}
		b = rest
		if fd.num != num {
			continue
		}
		if err := fd.want(protowire.BytesType); err != nil {
			return wrap(where, err)
		}
		if err := f(fd.b); err != nil {
			return err
		}
	}
	return nil
}

// wrap names where an error happened (nil stays nil).
func wrap(where fmt.Stringer, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", where, err)
}

// want checks a known field's wire type.
func (f field) want(t protowire.Type) error {
	if f.typ != t {
		return fmt.Errorf("%w: field %d has wire type %d, want %d", errMalformed, f.num, f.typ, t)
	}
	return nil
}

// fixed64s appends a repeated fixed64 or double field's values, packed or not.
func (f field) fixed64s(dst []uint64) ([]uint64, error) {
	switch f.typ {
	case protowire.Fixed64Type:
		return append(dst, f.v), nil
	case protowire.BytesType:
		if len(f.b)%8 != 0 {
			return dst, fmt.Errorf("%w: packed field %d is %d bytes, not a multiple of 8", errMalformed, f.num, len(f.b))
		}
		for b := f.b; len(b) > 0; b = b[8:] {
			v, _ := protowire.ConsumeFixed64(b)
			dst = append(dst, v)
		}
		return dst, nil
	}
	return dst, f.want(protowire.Fixed64Type)
}

// valueKind is the type of an attribute's value (OTLP's AnyValue).
type valueKind uint8

const (
	kindEmpty valueKind = iota
	kindString
	kindBool
	kindInt
	kindDouble
	kindArray
	kindMap
	kindBytes
)

// attr is one attribute, read in place: key and s alias the body.
type attr struct {
	key  []byte
	kind valueKind
	s    []byte // a string's or bytes' value, or an array's or map's message
	n    uint64 // a bool's, int's or double's value
}

// appendAttrs reads a KeyValue message onto dst.
func appendAttrs(dst []attr, kv []byte) ([]attr, error) {
	var a attr
	for b := kv; len(b) > 0; {
		f, rest, err := next(b)
		if err != nil {
			return dst, err
		}
		b = rest
		switch f.num {
		case fieldKey:
			if err := f.want(protowire.BytesType); err != nil {
				return dst, err
			}
			a.key = f.b
		case fieldValue:
			if err := f.want(protowire.BytesType); err != nil {
				return dst, err
			}
			if err := a.readValue(f.b); err != nil {
				return dst, err
			}
		}
	}
	return append(dst, a), nil
}

// readValue reads an AnyValue: the last of its oneof fields wins.
func (a *attr) readValue(v []byte) error {
	a.kind, a.s, a.n = kindEmpty, nil, 0
	for b := v; len(b) > 0; {
		f, rest, err := next(b)
		if err != nil {
			return err
		}
		b = rest
		var want protowire.Type
		switch f.num {
		case fieldAnyString, fieldAnyArray, fieldAnyKVList, fieldAnyBytes:
			want = protowire.BytesType
		case fieldAnyBool, fieldAnyInt:
			want = protowire.VarintType
		case fieldAnyDouble:
			want = protowire.Fixed64Type
		default:
			continue
		}
		if err := f.want(want); err != nil {
			return err
		}
		a.kind = [...]valueKind{fieldAnyString: kindString, fieldAnyBool: kindBool, fieldAnyInt: kindInt,
			fieldAnyDouble: kindDouble, fieldAnyArray: kindArray, fieldAnyKVList: kindMap, fieldAnyBytes: kindBytes}[f.num]
		a.s, a.n = f.b, f.v
	}
	return nil
}

// find returns the first attribute named name.
func find(attrs []attr, name string) (attr, bool) {
	for _, a := range attrs {
		if string(a.key) == name {
			return a, true
		}
	}
	return attr{}, false
}

// appendText appends the value as pdata's AsString writes a string, a
// number, a bool or bytes. An array or a map is written as its message in
// hex: enough to tell series apart (seriesID), and never a zone, instance
// or route (text refuses them).
func (a attr) appendText(dst []byte) []byte {
	switch a.kind {
	case kindString:
		return append(dst, a.s...)
	case kindBool:
		return strconv.AppendBool(dst, a.n != 0)
	case kindInt:
		return strconv.AppendInt(dst, int64(a.n), 10)
	case kindDouble:
		return appendFloat(dst, math.Float64frombits(a.n))
	case kindBytes:
		return base64.StdEncoding.AppendEncode(dst, a.s)
	case kindArray, kindMap:
		return hex.AppendEncode(append(dst, "0x"...), a.s)
	}
	return dst
}

// appendFloat writes a double as pdata does (ES6's number to string).
func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(dst, f, format, -1, 64)
}

// statusCode reads an HTTP status code attribute: an integer (the semantic
// conventions' type), or its decimal string (or a whole double).
func (a attr) statusCode() (int, bool) {
	var code int64 = -1
	switch a.kind {
	case kindInt:
		code = int64(a.n)
	case kindDouble:
		if f := math.Float64frombits(a.n); f == math.Trunc(f) && f >= 0 && f < 1000 {
			code = int64(f)
		}
	case kindString:
		s := a.s
		if len(s) > 0 && s[0] == '+' {
			s = s[1:]
		}
		if len(s) > 0 && len(s) <= 9 {
			code = 0
			for _, c := range s {
				if c < '0' || c > '9' {
					code = -1
					break
				}
				code = 10*code + int64(c-'0')
			}
		}
	}
	if code < 0 || code > 599 {
		return 0, false
	}
	return int(code), true
}
