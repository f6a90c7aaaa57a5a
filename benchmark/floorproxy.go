package benchmark

// The floor proxy (`grayzone bench floorproxy`) is a measuring stick, not
// product: the cheapest HTTP/1.1 proxy Go can make on this machine, to know
// what CPU per request a Go front door could reach at best (issue 23; see
// BENCHMARKS.md, "System calls per request: the front door against
// HAProxy"). It has NO protections: no limits, no timeouts, no header
// checks, no health checks; requests are taken to have no body (as wrk
// sends them) and answers to be framed by Content-Length (as `grayzone bench
// backend` sends them). Never deploy it.
//
// What makes it the floor: one OS thread (runtime.LockOSThread,
// GOMAXPROCS=1) running a level-triggered epoll loop on raw non-blocking
// descriptors, which reads a socket only when epoll has said it is readable
// (no read that finds nothing, unlike Go's edge-triggered netpoller behind
// net.Conn), one kept-alive backend connection per client connection
// (round-robin over the backends at accept), and one read and one write per
// message in each direction: 2 reads and 2 writes per request, HAProxy's
// count. Its reads, writes and epoll waits are raw system calls, which the Go
// scheduler does not see: the one goroutine keeps the one P while the loop
// blocks in epoll_pwait, so the runtime neither hands the P to another thread
// nor keeps sysmon polling every 20 µs for a P stuck in a system call; sysmon
// only preempts the loop every 10 ms (a signal that ends the wait with
// EINTR), which lets the runtime's own goroutines run.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

const floorBufSize = 16 << 10

var crlfcrlf = []byte("\r\n\r\n")

// floorConn is one side of a client-backend pair.
type floorConn struct {
	fd     int
	peer   *floorConn
	client bool
	in     []byte // bytes read and not yet sent on
	n      int    // of in
	// Output this side could not take at once: the rest of a message held
	// in from.in, sent once the socket is writable, with from paused.
	out       []byte
	outFrom   *floorConn
	outFrames int
	paused    bool // reads stopped until peer's pending output is out

	busy      bool // client: a request is at the backend, its answer not all relayed
	headDone  bool // backend: the answer's head is in
	remaining int  // backend: bytes of the answer not yet read
}

type floorLoop struct {
	ep, lfd, stopfd int
	backends        []unix.Sockaddr
	next            int
	conns           []*floorConn // by descriptor
	// Pairs closed, kept with their buffers for the next connections: no
	// allocation, hence no garbage collection, once the connections stop
	// growing in number (wrk reconnects every round).
	free []*floorConn
}

// RunFloorProxy is `grayzone bench floorproxy`: it listens on listen,
// prints the address bound on stdout and relays to backends until ctx ends.
// It takes the calling goroutine's thread for itself and sets GOMAXPROCS to
// 1: run it in a process of its own.
func RunFloorProxy(ctx context.Context, listen string, backends []string, stdout io.Writer) error {
	if len(backends) == 0 {
		return errors.New("no backends")
	}
	l := &floorLoop{}
	for _, b := range backends {
		a, err := net.ResolveTCPAddr("tcp", b)
		if err != nil {
			return fmt.Errorf("backend %s: %w", b, err)
		}
		l.backends = append(l.backends, sockaddrOf(a))
	}
	la, err := net.ResolveTCPAddr("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", listen, err)
	}
	runtime.GOMAXPROCS(1)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := l.open(sockaddrOf(la)); err != nil {
		return err
	}
	defer l.close()
	name, err := unix.Getsockname(l.lfd)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, addrString(name))
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			var one = [8]byte{1}
			unix.Write(l.stopfd, one[:])
		case <-done:
		}
	}()
	return l.run()
}

func sockaddrOf(a *net.TCPAddr) unix.Sockaddr {
	if ip4 := a.IP.To4(); ip4 != nil || a.IP == nil {
		s := &unix.SockaddrInet4{Port: a.Port}
		copy(s.Addr[:], ip4)
		return s
	}
	s := &unix.SockaddrInet6{Port: a.Port}
	copy(s.Addr[:], a.IP.To16())
	return s
}

func addrString(sa unix.Sockaddr) string {
	switch s := sa.(type) {
	case *unix.SockaddrInet4:
		return (&net.TCPAddr{IP: net.IP(s.Addr[:]), Port: s.Port}).String()
	case *unix.SockaddrInet6:
		return (&net.TCPAddr{IP: net.IP(s.Addr[:]), Port: s.Port}).String()
	}
	return fmt.Sprint(sa)
}

func domainOf(sa unix.Sockaddr) int {
	if _, ok := sa.(*unix.SockaddrInet6); ok {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

func (l *floorLoop) open(sa unix.Sockaddr) error {
	var err error
	if l.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	if l.stopfd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	if l.lfd, err = unix.Socket(domainOf(sa), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	unix.SetsockoptInt(l.lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(l.lfd, sa); err != nil {
		return fmt.Errorf("bind %s: %w", addrString(sa), err)
	}
	if err := unix.Listen(l.lfd, 4096); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	for _, fd := range []int{l.lfd, l.stopfd} {
		if err := l.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN); err != nil {
			return err
		}
	}
	return nil
}

func (l *floorLoop) close() {
	for _, c := range l.conns {
		if c != nil {
			unix.Close(c.fd)
		}
	}
	unix.Close(l.lfd)
	unix.Close(l.stopfd)
	unix.Close(l.ep)
}

func (l *floorLoop) ctl(op, fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(l.ep, op, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// Raw system calls: the loop is the thread's only work and never blocks
// anywhere but in epoll_pwait (see the file's comment).

func rawRead(fd int, p []byte) (int, unix.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

func rawWrite(fd int, p []byte) (int, unix.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

func rawEpollWait(ep int, events []unix.EpollEvent) (int, unix.Errno) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), ^uintptr(0), 0, 0)
	return int(n), e
}

func (l *floorLoop) run() error {
	events := make([]unix.EpollEvent, 256)
	for {
		n, e := rawEpollWait(l.ep, events)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return fmt.Errorf("epoll_pwait: %w", e)
		}
		accept := false
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			switch {
			case fd == l.lfd:
				accept = true
			case fd == l.stopfd:
				return nil
			case fd < len(l.conns) && l.conns[fd] != nil:
				l.handle(l.conns[fd], ev.Events)
			}
		}
		// After the batch, so that no event left in it for a descriptor
		// closed meanwhile lands on a new connection given the same number.
		if accept {
			l.accept()
		}
	}
}

// accept takes every waiting connection, each with a backend connection of
// its own (connected blocking: once per connection, not per request).
func (l *floorLoop) accept() {
	for {
		cfd, _, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: none left (or the peer gave up meanwhile)
		}
		sa := l.backends[l.next%len(l.backends)]
		l.next++
		bfd, err := unix.Socket(domainOf(sa), unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			if err = unix.Connect(bfd, sa); err == nil {
				err = unix.SetNonblock(bfd, true)
			}
			if err != nil {
				unix.Close(bfd)
			}
		}
		if err != nil {
			unix.Close(cfd)
			continue
		}
		for _, fd := range []int{cfd, bfd} {
			unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) // as Go's net and HAProxy
		}
		c, b := l.pair()
		c.fd, b.fd = cfd, bfd
		for _, x := range []*floorConn{c, b} {
			for x.fd >= len(l.conns) {
				l.conns = append(l.conns, nil)
			}
			l.conns[x.fd] = x
		}
		if l.ctl(unix.EPOLL_CTL_ADD, cfd, unix.EPOLLIN) != nil || l.ctl(unix.EPOLL_CTL_ADD, bfd, unix.EPOLLIN) != nil {
			l.drop(c)
		}
	}
}

// pair is a client side and its backend side, new or reused.
func (l *floorLoop) pair() (c, b *floorConn) {
	if n := len(l.free); n > 0 {
		c = l.free[n-1]
		l.free = l.free[:n-1]
		b = c.peer
		*c = floorConn{client: true, in: c.in, peer: b}
		*b = floorConn{in: b.in, peer: c}
		return c, b
	}
	c = &floorConn{client: true, in: make([]byte, floorBufSize)}
	b = &floorConn{in: make([]byte, floorBufSize)}
	c.peer, b.peer = b, c
	return c, b
}

// drop closes a pair and keeps it for reuse.
func (l *floorLoop) drop(c *floorConn) {
	if c.fd < 0 {
		return // dropped already
	}
	for _, x := range []*floorConn{c, c.peer} {
		l.conns[x.fd] = nil
		unix.Close(x.fd)
		x.fd = -1
	}
	if !c.client {
		c = c.peer
	}
	l.free = append(l.free, c)
}

func (l *floorLoop) handle(c *floorConn, ev uint32) {
	if ev&unix.EPOLLOUT != 0 && c.out != nil {
		l.flush(c)
		return
	}
	if c.paused || ev&unix.EPOLLIN == 0 {
		l.drop(c) // only an error or hang-up is reported for a paused side
		return
	}
	if c.n == len(c.in) {
		l.drop(c) // a head larger than the buffer
		return
	}
	m, e := rawRead(c.fd, c.in[c.n:])
	if m <= 0 {
		if e != unix.EAGAIN {
			l.drop(c) // end of stream or error
		}
		return
	}
	c.n += m
	if c.client {
		l.request(c)
	} else {
		l.answer(c)
	}
}

// request sends the client's next request head, if one is in and none is
// at the backend.
func (l *floorLoop) request(c *floorConn) {
	if c.busy {
		return // pipelined: sent when the answer before it is out
	}
	i := bytes.Index(c.in[:c.n], crlfcrlf)
	if i < 0 {
		return
	}
	c.busy = true
	l.send(c.peer, c, i+4)
}

// answer relays what the backend sent of its answer.
func (l *floorLoop) answer(b *floorConn) {
	if !b.headDone {
		i := bytes.Index(b.in[:b.n], crlfcrlf)
		if i < 0 {
			return
		}
		cl, ok := contentLength(b.in[:i+2])
		if !ok {
			l.drop(b)
			return
		}
		b.headDone, b.remaining = true, i+4+cl
	}
	if b.n > b.remaining || !b.peer.busy {
		l.drop(b) // more than the answer, or an answer to no request
		return
	}
	b.remaining -= b.n
	l.send(b.peer, b, b.n)
}

// send writes from's first k bytes to dst; what dst cannot take at once is
// kept, from paused, until dst is writable.
func (l *floorLoop) send(dst, from *floorConn, k int) {
	p := from.in[:k]
	w, e := rawWrite(dst.fd, p)
	if w == len(p) {
		l.sent(from, k)
		return
	}
	if w < 0 {
		if e != unix.EAGAIN {
			l.drop(dst)
			return
		}
		w = 0
	}
	dst.out, dst.outFrom, dst.outFrames = p[w:], from, k
	from.paused = true
	if l.ctl(unix.EPOLL_CTL_MOD, dst.fd, unix.EPOLLOUT) != nil || l.ctl(unix.EPOLL_CTL_MOD, from.fd, 0) != nil {
		l.drop(dst)
	}
}

func (l *floorLoop) flush(dst *floorConn) {
	w, e := rawWrite(dst.fd, dst.out)
	if w < 0 {
		if e != unix.EAGAIN {
			l.drop(dst)
		}
		return
	}
	if dst.out = dst.out[w:]; len(dst.out) > 0 {
		return
	}
	from, k := dst.outFrom, dst.outFrames
	dst.out, dst.outFrom = nil, nil
	from.paused = false
	if l.ctl(unix.EPOLL_CTL_MOD, dst.fd, unix.EPOLLIN) != nil || l.ctl(unix.EPOLL_CTL_MOD, from.fd, unix.EPOLLIN) != nil {
		l.drop(dst)
		return
	}
	l.sent(from, k)
}

// sent drops the k bytes sent on from from's buffer and moves on: a client's
// request is at the backend; a backend's answer, once all relayed, frees
// the client's next request.
func (l *floorLoop) sent(from *floorConn, k int) {
	copy(from.in, from.in[k:from.n])
	from.n -= k
	if from.client {
		return
	}
	if from.remaining == 0 {
		from.headDone = false
		c := from.peer
		c.busy = false
		l.request(c)
	}
}

// contentLength finds the Content-Length of a response head (ending in its
// last header line's CRLF); false when there is none or it is not a number.
func contentLength(head []byte) (int, bool) {
	const name = "content-length:"
	for len(head) > 0 {
		i := bytes.IndexByte(head, '\n')
		if i < 0 {
			break
		}
		line := head[:i]
		head = head[i+1:]
		if len(line) <= len(name) || !bytes.EqualFold(line[:len(name)], []byte(name)) {
			continue
		}
		v := bytes.TrimSpace(line[len(name):])
		if len(v) == 0 || len(v) > 12 {
			return 0, false
		}
		n := 0
		for _, d := range v {
			if d < '0' || d > '9' {
				return 0, false
			}
			n = n*10 + int(d-'0')
		}
		return n, true
	}
	return 0, false
}
