// Package freeport picks loopback ports that were free a moment ago, for a
// process that must be told its address before it starts (PostgreSQL,
// HAProxy, a child grayzone, an xDS server a config names). Where grayzone
// opens the listener itself, listen on 127.0.0.1:0 instead: a picked port can
// be taken by someone else before it is used.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Ports returns n distinct loopback ports, all held open together while
// picked so that none repeats. They are picked below the kernel's ephemeral
// port range: a port of that range, free a moment ago, can be taken by any
// outgoing connection (the process's own, or another test's) before the
// child binds it; below it, only someone binding that very port can. The
// search starts at a random place, so that two processes picking at once
// rarely probe the same ports.
func Ports(n int) ([]int, error) {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				lo = v
			}
		}
	}
	const first = 10000
	span := lo - first
	if span < 2*n {
		return nil, fmt.Errorf("freeport: %d ports wanted below the ephemeral range (from %d): too many", n, lo)
	}
	start := rand.IntN(span)
	var out []int
	for i := 0; len(out) < n; i++ {
		if i == span {
			return nil, fmt.Errorf("freeport: fewer than %d free ports from %d to %d", n, first, lo)
		}
		p := first + (start+i)%span
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue // taken
		}
		defer ln.Close()
		out = append(out, p)
	}
	return out, nil
}

// Port returns one loopback port.
func Port() (int, error) {
	p, err := Ports(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

// Loopback returns "127.0.0.1:PORT" with a port free a moment ago.
func Loopback() (string, error) {
	p, err := Port()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(p), nil
}

// Addr is Loopback for a test, which fails if none can be had. Nothing
// listens on it: also what a test of an unreachable address wants.
func Addr(tb testing.TB) string {
	tb.Helper()
	a, err := Loopback()
	if err != nil {
		tb.Fatalf("freeport: %v", err)
	}
	return a
}
