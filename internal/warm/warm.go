// Package warm runs short-lived work on goroutines whose stacks have
// already grown. A goroutine starts with a small stack that the runtime
// copies to one twice as large each time it runs out; an HTTP call grows
// it to several KiB. A process making thousands of calls a minute, each on
// a new goroutine (serve's canaries and health checks over a fleet), spends
// a share of its CPU copying stacks. Here a goroutine that has run a
// function waits a while for the next one instead of exiting.
package warm

import "time"

// Idle is how long a goroutine waits for more work before it exits.
const Idle = 30 * time.Second

// idle hands work to a goroutine waiting for it (unbuffered: a send
// succeeds only if one is waiting).
var idle = make(chan func())

// Go runs f on its own goroutine, as the go statement does: an idle one
// that ran earlier work if there is one, else a new one.
func Go(f func()) {
	select {
	case idle <- f:
	default:
		go loop(f)
	}
}

func loop(f func()) {
	t := time.NewTimer(Idle)
	defer t.Stop()
	for {
		f()
		t.Reset(Idle)
		select {
		case f = <-idle:
		case <-t.C:
			return
		}
	}
}
