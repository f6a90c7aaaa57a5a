package loopback

import "testing"

func TestIs(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:18000": true, "127.1.2.3:1": true, "[::1]:80": true, "localhost:80": true, "localhost": true,
		":18000": false, "0.0.0.0:18000": false, "[::]:1": false, "10.0.0.1:18000": false, "xds.example.com:443": false, "": false,
	} {
		if got := Is(addr); got != want {
			t.Errorf("Is(%q) = %v, want %v", addr, got, want)
		}
	}
}
