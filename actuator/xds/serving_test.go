package xds

import (
	"strings"
	"sync/atomic"
	"testing"
)

// TestServeWhileGatesStreams: while the gate is closed (a follower), a proxy
// gets nothing and is refused; once open (leading), it gets the state.
func TestServeWhileGatesStreams(t *testing.T) {
	var leading atomic.Bool
	s := startServer(t, Options{})
	s.ServeWhile(leading.Load)
	u, err := firstUpdate(t, s.Addr(), nil)
	if len(u.Resources) != 0 || err == nil || !strings.Contains(err.Error(), "not leading") {
		t.Fatalf("following: got %+v, %v; want a refusal", u, err)
	}
	if s.Pushes() != 0 || s.Refused() == 0 {
		t.Fatalf("following: %d pushes, %d refused; want 0 and >0", s.Pushes(), s.Refused())
	}
	leading.Store(true)
	if u, err := firstUpdate(t, s.Addr(), nil); err != nil || len(u.Resources) != 1 {
		t.Fatalf("leading: %+v, %v", u, err)
	}
}
