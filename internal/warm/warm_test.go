package warm

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// goid is the calling goroutine's id, read from its stack trace's first
// line ("goroutine 123 [running]:"): the test's way to see which goroutine
// ran a function, without an API for it in the package.
func goid(t *testing.T) uint64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf)
	if len(f) < 2 {
		t.Errorf("stack trace %q: no goroutine id", buf)
		return 0
	}
	id, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		t.Errorf("stack trace %q: %v", buf, err)
	}
	return id
}

// wait fails the test if ch is not closed (or sent on) within 10 s, rather
// than hanging.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not within 10s", what)
		var zero T
		return zero
	}
}

// Every function runs, once, each on a goroutine other than the caller's,
// also when many are started at once; a goroutine that is done takes the
// next.
func TestGo(t *testing.T) {
	const n = 1000
	caller := goid(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ran := map[int]int{}
	ranOn := map[uint64]bool{} // the goroutines that ran a function
	for i := range n {
		wg.Add(1)
		Go(func() {
			defer wg.Done()
			g := goid(t)
			mu.Lock()
			ran[i]++
			ranOn[g] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(ran) != n {
		t.Fatalf("%d of %d functions ran", len(ran), n)
	}
	for i, c := range ran {
		if c != 1 {
			t.Errorf("function %d ran %d times", i, c)
		}
	}
	if ranOn[caller] {
		t.Errorf("a function ran on the caller's goroutine %d", caller)
	}

	// A goroutine that is done takes the next: functions started one after
	// another come to one that ran earlier work. (A goroutine that has just
	// finished may not be waiting yet, so a call may still start a new one:
	// try until one is taken.)
	deadline := time.Now().Add(10 * time.Second)
	for reused := false; !reused; {
		if time.Now().After(deadline) {
			t.Fatal("no function started one after another ran on a goroutine that had run one, within 10s")
		}
		on := make(chan uint64, 1)
		Go(func() { on <- goid(t) })
		g := wait(t, on, "a function started after the others")
		if g == caller {
			t.Fatalf("a function ran on the caller's goroutine %d", caller)
		}
		reused, ranOn[g] = ranOn[g], true
	}

	// Sequential work is taken by a waiting goroutine: it does not block
	// the caller either way.
	done := make(chan struct{})
	Go(func() { close(done) })
	wait(t, done, "a function started alone")
	blocked, finished := make(chan struct{}), make(chan struct{})
	Go(func() { <-blocked; close(finished) })
	Go(func() { close(blocked) }) // runs although the first still waits
	wait(t, finished, "a function waiting on one started after it")
}
