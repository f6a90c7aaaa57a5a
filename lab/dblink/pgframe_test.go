package dblink

import (
	"encoding/binary"
	"slices"
	"testing"
)

func startupPacket(code uint32, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	b = binary.BigEndian.AppendUint32(b, code)
	return append(b, body...)
}

func typed(typ byte, body []byte) []byte {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint32(b, uint32(4+len(body)))
	return append(b, body...)
}

func cstr(s string) []byte { return append([]byte(s), 0) }

// kinds flattens events, and where each starts as an absolute offset.
type absEvent struct {
	at   int
	kind msgKind
}

func feedChunks(stream []byte, cuts []int) ([]absEvent, *frameParser) {
	p := newFrameParser()
	var out []absEvent
	prev := 0
	for _, cut := range append(cuts, len(stream)) {
		for _, ev := range p.Feed(stream[prev:cut], nil) {
			out = append(out, absEvent{at: prev + ev.start, kind: ev.kind})
		}
		prev = cut
	}
	return out, p
}

func TestFrameParser(t *testing.T) {
	var stream []byte
	stream = append(stream, startupPacket(codeSSLRequest, nil)...)
	stream = append(stream, startupPacket(196608, append(cstr("user"), cstr("grayzone")...))...)
	stream = append(stream, typed('Q', cstr(pingQuery))...) // skipped
	q1 := len(stream)
	stream = append(stream, typed('Q', cstr("INSERT INTO rides (zone, instance) VALUES ('a', 'b') RETURNING id"))...)
	q2 := len(stream)
	stream = append(stream, typed('Q', cstr("-- pong"))...) // same length as the ping, not a ping
	stream = append(stream, typed('P', cstr("stmt"))...)
	stream = append(stream, typed('B', make([]byte, 10))...)
	e1 := len(stream)
	stream = append(stream, typed('E', []byte{0, 0, 0, 0, 0})...)
	stream = append(stream, typed('S', nil)...)
	x := len(stream)
	stream = append(stream, typed('X', nil)...)
	want := []absEvent{{q1, msgQuery}, {q2, msgQuery}, {e1, msgQuery}, {x, msgTerminate}}

	got, p := feedChunks(stream, nil)
	if !slices.Equal(got, want) || p.Opaque() {
		t.Fatalf("one chunk: %v (opaque %v), want %v", got, p.Opaque(), want)
	}
	// Any split into two chunks finds the same messages; a message whose
	// start was in the earlier chunk is reported at the later chunk's start.
	for cut := 1; cut < len(stream); cut++ {
		got, _ := feedChunks(stream, []int{cut})
		if len(got) != len(want) {
			t.Fatalf("cut %d: %v, want %v", cut, got, want)
		}
		for i := range want {
			at := want[i].at
			if at < cut && got[i].at == cut {
				at = cut
			}
			if got[i].kind != want[i].kind || got[i].at != at {
				t.Fatalf("cut %d: event %d = %v, want %v", cut, i, got[i], want[i])
			}
		}
	}
	// Byte by byte.
	cuts := make([]int, 0, len(stream))
	for i := 1; i < len(stream); i++ {
		cuts = append(cuts, i)
	}
	if got, _ := feedChunks(stream, cuts); len(got) != len(want) {
		t.Fatalf("byte by byte: %v, want %v", got, want)
	}
}

func TestFrameParserCancelAndGarbage(t *testing.T) {
	got, p := feedChunks(startupPacket(codeCancelRequest, make([]byte, 8)), nil)
	if len(got) != 0 || p.Opaque() {
		t.Fatalf("cancel request: %v opaque %v", got, p.Opaque())
	}
	// A TLS ClientHello after an accepted SSLRequest is not PostgreSQL
	// framing: the parser gives up rather than roll on random bytes.
	stream := append(startupPacket(codeSSLRequest, nil), 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 'Q')
	got, p = feedChunks(stream, nil)
	if len(got) != 0 || !p.Opaque() {
		t.Fatalf("TLS: %v opaque %v", got, p.Opaque())
	}
}
