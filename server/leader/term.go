package leader

import (
	"context"
	"sync"
)

// Term is the leadership this replica holds now, readable from any
// goroutine: the service loop begins one when it takes over under an epoch
// and ends it when it steps down. Its context is the leadership's context,
// which the service cancels the moment the lease may no longer be ours
// (StepDown after the last successful renewal was sent, a third of a TTL
// before another replica can take it), so whatever runs under it stops
// before the lease could lapse.
//
// Only what runs under a term may act on anything shared (ARC, an HAProxy,
// the xDS clients, Kubernetes, commands): a follower has no term.
type Term struct {
	mu      sync.Mutex
	ctx     context.Context // nil: not leading
	epoch   uint64
	changed chan struct{} // closed and replaced at every Begin and End
}

// NewTerm returns a Term with no leadership.
func NewTerm() *Term { return &Term{changed: make(chan struct{})} }

// Begin starts a term under epoch; ctx is the leadership's context.
func (t *Term) Begin(ctx context.Context, epoch uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ctx, t.epoch = ctx, epoch
	close(t.changed)
	t.changed = make(chan struct{})
}

// End ends the current term (the caller cancels its context).
func (t *Term) End() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ctx, t.epoch = nil, 0
	close(t.changed)
	t.changed = make(chan struct{})
}

// Context returns the current leadership's context and epoch, and false
// while following (no term, or its context is done).
func (t *Term) Context() (context.Context, uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx == nil || t.ctx.Err() != nil {
		return nil, 0, false
	}
	return t.ctx, t.epoch, true
}

// Each runs f under every term's context, one term at a time, until ctx is
// done: f starts when a term begins and must return when the context it is
// given ends (the term ended, or ctx is done). A follower runs nothing.
func (t *Term) Each(ctx context.Context, f func(context.Context)) {
	for {
		t.mu.Lock()
		lctx, changed := t.ctx, t.changed
		t.mu.Unlock()
		if lctx != nil && lctx.Err() == nil {
			// Under the leadership's context (its values: the fencing
			// token), ended by ctx too.
			run, cancel := context.WithCancel(lctx)
			stop := context.AfterFunc(ctx, cancel)
			f(run)
			stop()
			cancel()
			if ctx.Err() != nil {
				return
			}
			// Wait for the next change: this term's context is done (its
			// End follows), or the term was replaced.
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}
