// Package haproxylog turns HAProxy's per-request logs into grayzone's
// server-side observations: HAProxy sends one syslog datagram per request
// (`log 127.0.0.1:5140 local0`) in the format
//
//	log-format "%ci %b %s %ST %Ta %HM %HP"
//
// (client, backend, server, status, total time in ms, method, path), the
// one in examples/haproxy.cfg, and grayzone receives them on UDP.
package haproxylog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Format is the log-format this package reads (haproxy.LogFormat, which
// generated configurations use; a test keeps them equal).
const Format = "%ci %b %s %ST %Ta %HM %HP"

// Entry is one request as HAProxy logged it.
type Entry struct {
	Backend, Server string
	Status          int // 0: no response (aborted, connection failure; HAProxy logs -1)
	Total           time.Duration
	Method, Path    string
}

// maxTotalMs bounds a request's total time: a day.
const maxTotalMs = 24 * 60 * 60 * 1000

// ErrNotRequest marks a line that is not a request log (HAProxy's own
// notices arrive on the same socket).
var ErrNotRequest = errors.New("not a request log line")

// Parse reads one datagram: an RFC 3164 syslog header ("<134>Dec  2
// 00:00:00 haproxy[12]: ") followed by a line in Format.
func Parse(line string) (Entry, error) {
	line = strings.TrimSpace(line)
	if i := strings.Index(line, "]: "); i >= 0 {
		line = line[i+3:]
	} else if i := strings.Index(line, ": "); i >= 0 && strings.HasPrefix(line, "<") {
		line = line[i+2:]
	}
	f := strings.Fields(line)
	if len(f) != 7 {
		return Entry{}, fmt.Errorf("%w: %q", ErrNotRequest, line)
	}
	st, err1 := strconv.Atoi(f[3])
	ms, err2 := strconv.Atoi(f[4])
	// A status past 999 or a time past a day is no HAProxy log line (and a
	// huge time would overflow a Duration into a negative latency).
	if err1 != nil || err2 != nil || net.ParseIP(f[0]) == nil || st > 999 || ms > maxTotalMs {
		return Entry{}, fmt.Errorf("%w: %q", ErrNotRequest, line)
	}
	if st < 0 {
		st = 0 // observation.FromStatus's "no response"
	}
	if ms < 0 {
		ms = 0 // -1: the request did not complete
	}
	return Entry{Backend: f[1], Server: f[2], Status: st, Total: time.Duration(ms) * time.Millisecond, Method: f[5], Path: f[6]}, nil
}

// Receiver is a bound UDP syslog receiver.
type Receiver struct {
	conn *net.UDPConn
}

// Listen binds addr (host:port, UDP).
func Listen(addr string) (*Receiver, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("haproxylog: %w", err)
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("haproxylog: %w", err)
	}
	_ = c.SetReadBuffer(4 << 20) // bursts of requests: one datagram each
	return &Receiver{conn: c}, nil
}

// Addr is the address bound.
func (r *Receiver) Addr() string { return r.conn.LocalAddr().String() }

// Run calls fn with each request entry until ctx is done; lines that are
// not request logs are skipped.
func (r *Receiver) Run(ctx context.Context, fn func(Entry)) {
	go func() { <-ctx.Done(); r.conn.Close() }()
	buf := make([]byte, 64<<10)
	for {
		n, _, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			return // closed
		}
		if e, err := Parse(string(buf[:n])); err == nil {
			fn(e)
		}
	}
}
