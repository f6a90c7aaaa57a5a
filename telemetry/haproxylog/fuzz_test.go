package haproxylog

import (
	"errors"
	"testing"
)

// FuzzParse: HAProxy's log datagrams reach a UDP socket anyone on the path
// can send to. Parse never panics, rejects what is not a request line with
// ErrNotRequest, and never yields a negative latency or an impossible status.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"<134>Dec  2 00:10:01 haproxy[4242]: 127.0.0.1 regional web-3 503 2004 GET /ride/7\n",
		"<134>Dec  2 00:10:01 haproxy[1]: 10.0.0.9 regional <NOSRV> -1 -1 GET /x",
		"<133>Dec  2 00:10:01 haproxy[1]: Proxy regional started.",
		"<134>x: ::1 b c 200 99999999999999999 GET /",
		"127.0.0.1 regional web-1 1000 5 GET /",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, err := Parse(line)
		if err != nil {
			if !errors.Is(err, ErrNotRequest) {
				t.Fatalf("Parse(%q): %v is not ErrNotRequest", line, err)
			}
			return
		}
		if e.Total < 0 || e.Status < 0 || e.Status > 999 {
			t.Fatalf("Parse(%q) = %+v: impossible latency or status", line, e)
		}
	})
}
