package freeport

import (
	"net"
	"testing"
)

func TestPortsAreDistinctAndFree(t *testing.T) {
	ps, err := Ports(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ps {
		if seen[p] || p <= 0 {
			t.Fatalf("ports %v: repeated or invalid", ps)
		}
		seen[p] = true
	}
	ln, err := net.Listen("tcp", Addr(t))
	if err != nil {
		t.Fatalf("the address given is not free: %v", err)
	}
	ln.Close()
}
