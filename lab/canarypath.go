package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
)

// canaryPath is grayzone's own network path to one zone's endpoint in real
// mode: a loopback TCP relay the zone's canaries call through. A
// canary_failure fault cuts it: new connections are reset and open ones
// closed, so the canaries' calls fail the way they do when grayzone's
// network to the zone is down, while customers (who do not use this path)
// are untouched.
type canaryPath struct {
	ln       net.Listener
	upstream string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newCanaryPath relays a loopback port to the endpoint at base (a URL).
func newCanaryPath(ctx context.Context, base string) (*canaryPath, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("lab: canary path to %s: %w", base, err)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("lab: canary path to %s: %w", base, err)
	}
	p := &canaryPath{ln: ln, upstream: u.Host, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// URL is the base URL the canaries call instead of the endpoint.
func (p *canaryPath) URL() string { return "http://" + p.ln.Addr().String() }

// SetCut cuts or restores the path.
func (p *canaryPath) SetCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			reset(c)
		}
	}
}

// Close stops the relay and every connection through it.
func (p *canaryPath) Close() {
	p.ln.Close()
	p.SetCut(true)
	p.wg.Wait()
}

func (p *canaryPath) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			reset(c)
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.relay(c)
	}
}

func (p *canaryPath) relay(c net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Half-close so the other direction can drain, then let the caller
		// tear down both sides.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	// One side ended: a cut (reset) or the client is done; either way the
	// exchange is over once the other direction has drained or failed.
	<-done
}

// reset closes c with a TCP RST (SO_LINGER 0), as a cut path does.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}
