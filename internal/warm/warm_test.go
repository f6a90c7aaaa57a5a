package warm

import (
	"sync"
	"testing"
)

// Every function runs, once, each on a goroutine other than the caller's,
// also when many are started at once; a goroutine that is done takes the
// next.
func TestGo(t *testing.T) {
	const n = 1000
	var wg sync.WaitGroup
	var mu sync.Mutex
	ran := map[int]int{}
	for i := range n {
		wg.Add(1)
		Go(func() {
			defer wg.Done()
			mu.Lock()
			ran[i]++
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
	// Sequential work is taken by a waiting goroutine: it does not block
	// the caller either way.
	done := make(chan struct{})
	Go(func() { close(done) })
	<-done
	blocked := make(chan struct{})
	Go(func() { <-blocked })
	Go(func() { close(blocked) }) // runs although the first still waits
}
