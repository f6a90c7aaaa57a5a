// Package loopback tells whether an address stays on this machine: the
// rule "a listener (or a peer) off loopback needs credentials, unless the
// configuration says insecure: true" is decided here.
package loopback

import "net"

// Is reports whether host:port (or a bare host) names a loopback address:
// localhost, 127.0.0.0/8 or ::1. An empty host (every interface) is not.
func Is(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
