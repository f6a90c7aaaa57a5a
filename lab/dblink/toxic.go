package dblink

import (
	"time"

	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
)

const toxicType = "grayzone_db_faults"

func init() {
	toxics.Register(toxicType, new(faultToxic))
}

// faultToxic sits on the client->database stream of every connection and
// applies the link's current faults once per call. toxiproxy creates one
// instance per link from JSON, so it carries only the id of the shared state.
type faultToxic struct {
	Link string `json:"link"`
}

// stallCause says why a connection swallows everything it is sent.
type stallCause uint8

const (
	notStalled stallCause = iota
	stalledByLoss
	stalledByBlackhole
)

// connState is per connection and survives toxic interrupts.
type connState struct {
	parser *frameParser
	stall  stallCause
	closed bool
	warned bool // about lost framing
	evs    []event
}

// GetBufferSize lets the reader keep going while a chunk waits out latency.
func (t *faultToxic) GetBufferSize() int { return 1024 }

// NewState implements toxics.StatefulToxic.
func (t *faultToxic) NewState() any {
	return &connState{parser: newFrameParser()}
}

// Pipe implements toxics.Toxic. It returns on interrupt (toxiproxy re-runs
// it with the same state) or when the connection ends.
func (t *faultToxic) Pipe(stub *toxics.ToxicStub) {
	cs, _ := stub.State.(*connState)
	ls := lookupState(t.Link)
	if cs == nil || ls == nil {
		// The link is gone (or toxiproxy misbehaved): forward untouched.
		new(toxics.NoopToxic).Pipe(stub)
		return
	}
	if cs.closed {
		drain(stub)
		return
	}
	for {
		cfg := ls.cfg.Load()
		if cs.stall == stalledByBlackhole && !cfg.blackhole {
			// The blackhole ended: its victims are long given up on, so
			// end them rather than leave clients waiting on them.
			closeAndDrain(stub, cs)
			return
		}
		select {
		case <-stub.Interrupt:
			return
		case <-ls.done:
			closeAndDrain(stub, cs)
			return
		case <-cfg.changed:
			// Re-evaluate against the new faults at the top of the loop.
		case c := <-stub.Input:
			if c == nil {
				cs.closed = true
				stub.Close()
				return
			}
			if !t.handle(stub, ls, cs, c) {
				return
			}
		}
	}
}

// handle applies the faults to one chunk. It returns false when Pipe must
// return (connection closed or toxic interrupted).
func (t *faultToxic) handle(stub *toxics.ToxicStub, ls *linkState, cs *connState, c *stream.StreamChunk) bool {
	cs.evs = cs.parser.Feed(c.Data, cs.evs[:0])
	if cs.parser.Opaque() && !cs.warned {
		cs.warned = true
		ls.log.Warn("db link lost PostgreSQL framing on a connection (TLS? use sslmode=disable); per-call faults skip it")
	}
	cfg := ls.cfg.Load()

	if cfg.blackhole && cs.stall == notStalled {
		cs.stall = stalledByBlackhole
	}
	if cs.stall != notStalled {
		// Swallow everything; but a client that gave up says Terminate and
		// then waits for the socket to close, holding its pool slot.
		for _, ev := range cs.evs {
			if ev.kind == msgTerminate {
				closeAndDrain(stub, cs)
				return false
			}
		}
		return true
	}

	calls := 0
	for i, ev := range cs.evs {
		if ev.kind != msgQuery {
			continue
		}
		calls++
		switch ls.rollCall(cfg) {
		case reset:
			// The query never reaches the database.
			closeAndDrain(stub, cs)
			return false
		case stall:
			cs.stall = stalledByLoss
			if ev.start > 0 {
				// Earlier calls in the chunk (pipelining) go through.
				head := &stream.StreamChunk{Data: c.Data[:ev.start], Timestamp: c.Timestamp}
				if !forward(stub, ls, cs, callDelay(ls, cfg, calls-1), head) {
					return false
				}
			}
			for _, later := range cs.evs[i+1:] {
				if later.kind == msgTerminate {
					closeAndDrain(stub, cs)
					return false
				}
			}
			return true
		}
	}
	return forward(stub, ls, cs, callDelay(ls, cfg, calls), c)
}

// callDelay is the latency of a chunk carrying n calls. Latency is added per
// call, not per round trip: the scenario's "each call waits latency longer"
// then holds whatever the pool does around it (connects, pgx's pings).
func callDelay(ls *linkState, cfg *config, n int) time.Duration {
	if n == 0 {
		return 0
	}
	return ls.delay(cfg)
}

// forward passes a chunk on once delay has passed since toxiproxy read it
// (so chunks queued behind a delayed one do not pay twice).
func forward(stub *toxics.ToxicStub, ls *linkState, cs *connState, delay time.Duration, c *stream.StreamChunk) bool {
	if d := delay - time.Since(c.Timestamp); d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-stub.Interrupt:
			timer.Stop()
			// Convention: hand in-flight data on, then yield.
			send(stub, ls, cs, c)
			return false
		case <-ls.done:
			timer.Stop()
			closeAndDrain(stub, cs)
			return false
		}
	}
	return send(stub, ls, cs, c)
}

// send writes to the next stage unless the link is closing, so a dead writer
// downstream cannot pin this goroutine after Close.
func send(stub *toxics.ToxicStub, ls *linkState, cs *connState, c *stream.StreamChunk) bool {
	select {
	case stub.Output <- c:
		return true
	case <-ls.done:
		closeAndDrain(stub, cs)
		return false
	}
}

// closeAndDrain ends the connection: closing our output makes toxiproxy close
// the database side, which closes the client side (with RST, thanks to
// linger 0). Input is drained so the stages before us never block.
func closeAndDrain(stub *toxics.ToxicStub, cs *connState) {
	cs.closed = true
	stub.Close()
	drain(stub)
}

func drain(stub *toxics.ToxicStub) {
	for {
		select {
		case c := <-stub.Input:
			if c == nil {
				return
			}
		case <-stub.Interrupt:
			return
		}
	}
}
