package shift

import (
	"context"
	"errors"
	"testing"
	"time"
)

// blockingStore holds every save of resource "web" until release is closed.
type blockingStore struct {
	*MemoryStore
	entered chan struct{}
	release chan struct{}
}

func (b *blockingStore) SaveShift(ctx context.Context, s Shift) error {
	if s.Resource == "web" {
		b.entered <- struct{}{}
		<-b.release
	}
	return b.MemoryStore.SaveShift(ctx, s)
}

// The store is written without the manager's lock: while a write hangs on
// the database, reads and writes of other resources go on, a second write
// of the same resource waits its turn, and the hanging shift appears only
// once the store took it.
func TestNoLockHeldAcrossTheStore(t *testing.T) {
	st := &blockingStore{MemoryStore: NewMemoryStore(), entered: make(chan struct{}, 4), release: make(chan struct{})}
	m := newManager(t, st)
	started := make(chan error, 1)
	go func() { _, err := m.Start(t0, req("web", "az1", time.Hour)); started <- err }()
	<-st.entered // the save is on the wire

	if _, ok := m.Active("web"); ok {
		t.Fatal("a shift the store has not taken yet is active")
	}
	if got := m.List(ListFilter{}); len(got) != 0 {
		t.Fatalf("List while saving: %+v", got)
	}
	other := make(chan error, 1)
	go func() { _, err := m.Start(t0, req("db", "az1", time.Hour)); other <- err }()
	select {
	case err := <-other:
		if err != nil {
			t.Fatalf("another resource's start: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("another resource's start waits on this resource's store write")
	}
	second := make(chan error, 1)
	go func() { _, err := m.Start(t0, req("web", "az2", time.Hour)); second <- err }()
	select {
	case err := <-second:
		t.Fatalf("a second start of the same resource did not wait for the first: %v", err)
	case <-time.After(50 * time.Millisecond): // a negative check: it may only be late, never early
	}
	close(st.release)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if err := <-second; !errors.Is(err, ErrConflict) {
		t.Fatalf("second start of web: %v, want a conflict with the first", err)
	}
	if act, ok := m.Active("web"); !ok || act.AwayFrom != "az1" {
		t.Fatalf("active %+v %v", act, ok)
	}
}
