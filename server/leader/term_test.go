package leader

import (
	"context"
	"testing"
	"time"

	"github.com/grayzone/grayzone/actuator"
)

// TestTermEachRunsOnlyWhileLeading: nothing runs while following; f runs
// under the leadership's context (its fencing token included) and returns
// when the term's context is cancelled (the step-down point), and runs again
// in the next term.
func TestTermEachRunsOnlyWhileLeading(t *testing.T) {
	term := NewTerm()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	runs := make(chan uint64)
	ended := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		term.Each(ctx, func(c context.Context) {
			epoch, _ := actuator.FenceFrom(c)
			runs <- epoch
			<-c.Done()
			ended <- struct{}{}
		})
	}()
	select {
	case e := <-runs:
		t.Fatalf("ran under epoch %d while following", e)
	case <-time.After(50 * time.Millisecond):
	}
	if _, _, ok := term.Context(); ok {
		t.Fatal("a follower has a term")
	}
	for _, epoch := range []uint64{3, 4} {
		lctx, cancel := context.WithCancel(ctx)
		term.Begin(actuator.WithFence(lctx, epoch), epoch)
		if got := <-runs; got != epoch {
			t.Fatalf("ran under fence %d, want %d", got, epoch)
		}
		if _, e, ok := term.Context(); !ok || e != epoch {
			t.Fatalf("Context: %d %v", e, ok)
		}
		cancel() // the watch cancels the leadership's context first...
		<-ended
		if _, _, ok := term.Context(); ok {
			t.Fatal("a cancelled term still counts as leading")
		}
		term.End() // ...then the loop steps down
	}
	stop()
	<-done
}
