package dblink

import "encoding/binary"

// PostgreSQL v3 frontend framing, just enough to find query boundaries in a
// client->server byte stream that toxiproxy hands us in arbitrary chunks.

const (
	codeSSLRequest    = 80877103
	codeGSSENCRequest = 80877104
	codeCancelRequest = 80877102

	// maxStartupLen bounds a startup-format packet; anything larger means we
	// are not looking at PostgreSQL framing (e.g. TLS after an accepted
	// SSLRequest), so the parser gives up instead of guessing.
	maxStartupLen = 10000
	maxTypedLen   = 1 << 30

	// pingQuery is what pgx's Ping (and so pgxpool's health check) sends.
	pingQuery = "-- ping"
)

// msgKind is what the fault toxic cares about in a message.
type msgKind uint8

const (
	// msgQuery is a simple Query ('Q') or an Execute ('E'): one call of the app.
	msgQuery msgKind = iota + 1
	// msgTerminate is the client saying goodbye ('X').
	msgTerminate
)

// event reports a message of interest. start is the offset in the current
// chunk where the message begins (0 when it began in an earlier chunk).
type event struct {
	start int
	kind  msgKind
}

type parseState uint8

const (
	stateHeader parseState = iota
	stateBody
)

// frameParser tracks message boundaries across chunks. The zero value is not
// ready; use newFrameParser.
type frameParser struct {
	startup bool // the next message is startup-format (no type byte)
	opaque  bool // framing lost: stop interpreting the stream

	state    parseState
	hdr      [8]byte
	hdrN     int
	typ      byte
	bodyLeft int
	msgStart int

	// peek collects the first bytes of a 'Q' body that may be pgx's ping.
	peeking bool
	peek    [len(pingQuery) + 1]byte
	peekN   int
}

func newFrameParser() *frameParser {
	return &frameParser{startup: true}
}

// Opaque reports whether the parser stopped understanding the stream.
func (p *frameParser) Opaque() bool { return p.opaque }

// Feed consumes one chunk and appends the events it completes to evs.
func (p *frameParser) Feed(data []byte, evs []event) []event {
	// A message still in progress began in an earlier chunk.
	p.msgStart = 0
	i := 0
	for i < len(data) && !p.opaque {
		switch p.state {
		case stateHeader:
			if p.hdrN == 0 {
				p.msgStart = i
			}
			need := 5
			if p.startup {
				need = 8
			}
			n := copy(p.hdr[p.hdrN:need], data[i:])
			p.hdrN += n
			i += n
			if p.hdrN < need {
				continue
			}
			evs = p.headerDone(evs)
		case stateBody:
			if p.peeking {
				n := copy(p.peek[p.peekN:], data[i:])
				p.peekN += n
				p.bodyLeft -= n
				i += n
				if p.peekN == len(p.peek) {
					p.peeking = false
					if string(p.peek[:len(pingQuery)]) != pingQuery || p.peek[len(pingQuery)] != 0 {
						evs = append(evs, event{start: p.msgStart, kind: msgQuery})
					}
				}
			} else {
				n := min(p.bodyLeft, len(data)-i)
				p.bodyLeft -= n
				i += n
			}
			if p.bodyLeft == 0 {
				p.state = stateHeader
			}
		}
	}
	return evs
}

// headerDone interprets a complete header and moves to the body.
func (p *frameParser) headerDone(evs []event) []event {
	p.hdrN = 0
	if p.startup {
		length := int(binary.BigEndian.Uint32(p.hdr[0:4]))
		code := binary.BigEndian.Uint32(p.hdr[4:8])
		if length < 8 || length > maxStartupLen {
			p.opaque = true
			return evs
		}
		// After SSLRequest/GSSENCRequest the server answered (we assume 'N':
		// the link needs plaintext) and another startup packet follows.
		p.startup = code == codeSSLRequest || code == codeGSSENCRequest
		if code == codeCancelRequest {
			p.startup = false
		}
		p.bodyLeft = length - 8
	} else {
		p.typ = p.hdr[0]
		length := int(binary.BigEndian.Uint32(p.hdr[1:5]))
		if length < 4 || length > maxTypedLen {
			p.opaque = true
			return evs
		}
		p.bodyLeft = length - 4
		switch p.typ {
		case 'X':
			evs = append(evs, event{start: p.msgStart, kind: msgTerminate})
		case 'E':
			evs = append(evs, event{start: p.msgStart, kind: msgQuery})
		case 'Q':
			if p.bodyLeft == len(p.peek) {
				p.peeking = true
				p.peekN = 0
			} else {
				evs = append(evs, event{start: p.msgStart, kind: msgQuery})
			}
		}
	}
	if p.bodyLeft > 0 {
		p.state = stateBody
	}
	return evs
}
