// Package strictjson decodes JSON the way grayzone's API takes it: one
// object, unknown fields refused, and every error one line naming the field
// ("observations[3].latency_ms: want a number, got string").
package strictjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
)

// Decode reads one JSON object into dst: unknown fields and data
// after the object are errors.
func Decode(r io.Reader, dst any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	var extra json.RawMessage
	if dec.Decode(&extra) != io.EOF {
		return errors.New("body: unexpected data after the JSON object")
	}
	return nil
}

// Error turns a decoding error into one line naming the field, with
// prefix ("observations[3]") before the field path.
func Error(prefix string, err error) error {
	field := func(f string) string {
		switch {
		case prefix == "" && f == "":
			return "body"
		case prefix == "":
			return f
		case f == "":
			return prefix
		}
		return prefix + "." + f
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tpe *time.ParseError
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%s: empty, want a JSON object", field(""))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: truncated JSON", field(""))
	case errors.As(err, &syn):
		return fmt.Errorf("%s: invalid JSON at byte %d: %s", field(""), syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		want := describeType(typ)
		if num, ok := strings.CutPrefix(typ.Value, "number "); ok && want == "a number" {
			return fmt.Errorf("%s: %s is out of range", field(typ.Field), num) // e.g. 1e999
		}
		return fmt.Errorf("%s: want %s, got %s", field(typ.Field), want, typ.Value)
	case errors.As(err, &tpe):
		// Only ObservationIn.At is a time in any request body.
		return fmt.Errorf("%s: %q is not an RFC 3339 time", field("at"), tpe.Value)
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, `json: unknown field "`); ok {
		return fmt.Errorf("%s: unknown field", field(strings.TrimSuffix(name, `"`)))
	}
	return fmt.Errorf("%s: %s", field(""), strings.TrimPrefix(msg, "json: "))
}

func describeType(e *json.UnmarshalTypeError) string {
	if e.Type == nil {
		return "another type"
	}
	t := e.Type
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}
