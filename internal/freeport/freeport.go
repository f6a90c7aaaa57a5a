// Package freeport picks loopback ports that were free a moment ago, for a
// process that must be told its address before it starts (PostgreSQL,
// HAProxy, a child grayzone, an xDS server a config names). Where grayzone
// opens the listener itself, listen on 127.0.0.1:0 instead: a picked port can
// be taken by someone else before it is used.
package freeport

import (
	"net"
	"strconv"
	"testing"
)

// Ports returns n distinct loopback ports, all held open together while
// picked so that none repeats.
func Ports(n int) ([]int, error) {
	var out []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
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
