package benchmark

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFloorProxyRelays: the floor proxy, a process of its own (the test
// binary through TestMain) over two real backends, relays a few hundred
// requests on kept-alive connections, pipelined ones too, each answer
// intact, in order, and round-robin over the backends; a client that hangs
// up does not stop it; and it makes one read and one write per message
// (2 and 2 per request, counted by the kernel: no read that found nothing).
func TestFloorProxyRelays(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // the backends
	var addrs []string
	for range 2 {
		pr, pw := io.Pipe()
		go RunBackend(ctx, "127.0.0.1:0", pw)
		line, err := bufio.NewReader(pr).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		go io.Copy(io.Discard, pr)
		addrs = append(addrs, strings.TrimSpace(line))
	}
	proxy, cmd := startFloorProxy(t, addrs)

	arrivals := func() (n int64) {
		for _, a := range addrs {
			var x Arrivals
			if err := getJSON("http://"+a+"/_arrivals", &x); err != nil {
				t.Fatal(err)
			}
			n += x.Count
		}
		return n
	}
	// One request at a time on each of 4 kept-alive connections.
	const conns, perConn = 4, 100
	var cs []net.Conn
	var rs []*bufio.Reader
	for range conns {
		c, err := net.Dial("tcp", proxy)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cs, rs = append(cs, c), append(rs, bufio.NewReader(c))
	}
	roundTrip := func(i, k int) {
		t.Helper()
		fmt.Fprintf(cs[i], "GET /bench?%d HTTP/1.1\r\nHost: x\r\n\r\n", k)
		readAnswer(t, rs[i])
	}
	before := readProcCounts(cmd.Process.Pid)
	for k := range perConn {
		for i := range conns {
			roundTrip(i, k)
		}
	}
	after := readProcCounts(cmd.Process.Pid)
	if n := arrivals(); n != conns*perConn {
		t.Errorf("backends counted %d requests, want %d", n, conns*perConn)
	}
	if after.io {
		reads, writes := after.reads-before.reads, after.writes-before.writes
		if reads != 2*conns*perConn || writes != 2*conns*perConn {
			t.Errorf("%d requests: %d reads and %d writes, want 2 and 2 per request", conns*perConn, reads, writes)
		}
	}

	// Pipelined: three requests in one write come back as three answers.
	fmt.Fprint(cs[0], strings.Repeat("GET /bench HTTP/1.1\r\nHost: x\r\n\r\n", 3))
	for range 3 {
		readAnswer(t, rs[0])
	}
	// A client that hangs up, with and without a request in flight.
	cs[1].Close()
	fmt.Fprint(cs[2], "GET /bench HTTP/1.1\r\nHost: x\r\n\r\n")
	cs[2].Close()
	roundTrip(3, 0)
	// Connections one after another (the pairs closed are reused).
	for range 20 {
		c, err := net.Dial("tcp", proxy)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, "GET /bench HTTP/1.1\r\nHost: x\r\n\r\n")
		readAnswer(t, bufio.NewReader(c))
		c.Close()
	}
	// A new connection after those is served too, by net/http's client.
	resp, err := http.Get("http://" + proxy + "/bench")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, backendBody) {
		t.Errorf("net/http through the floor proxy: %d %q", resp.StatusCode, body)
	}
}

// startFloorProxy runs the floor proxy over backends in a process of its
// own (this test binary, through TestMain), until the test ends.
func startFloorProxy(t *testing.T, backends []string) (addr string, _ *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GRAYZONE_TEST_FLOORPROXY="+strings.Join(backends, ","))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line), cmd
}

// TestFloorProxyLargeAnswer: an answer larger than the socket buffers, to a
// client that reads it only later, is relayed whole (the floor proxy keeps
// what the client cannot take yet and stops reading the backend meanwhile),
// and the connection serves the next request after it.
func TestFloorProxyLargeAnswer(t *testing.T) {
	const size = 16 << 20
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i * 7 / 3)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(body)
	}))
	defer srv.Close()
	proxy, _ := startFloorProxy(t, []string{srv.Listener.Addr().String()})
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for i := range 2 {
		fmt.Fprint(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
		if i == 0 {
			time.Sleep(200 * time.Millisecond) // the buffers fill meanwhile
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("answer %d: %d bytes of %d, intact %v, %v", i, len(got), size, bytes.Equal(got, body), err)
		}
	}
}

// readAnswer reads one answer of a benchmark backend and checks it whole.
func readAnswer(t *testing.T, r *bufio.Reader) {
	t.Helper()
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, backendBody) {
		t.Fatalf("answer %d %q %v", resp.StatusCode, body, err)
	}
}

// contentLength of heads as backends write them.
func TestFloorContentLength(t *testing.T) {
	for head, want := range map[string]int{
		"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n": 100,
		"HTTP/1.1 200 OK\r\ncontent-length:0\r\n":                                0,
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n":                        -1,
		"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n":                              -1,
		"HTTP/1.1 200 OK\r\nContent-Length: \r\n":                                -1,
	} {
		n, ok := contentLength([]byte(head))
		if !ok {
			n = -1
		}
		if n != want {
			t.Errorf("%q: %d, want %d", head, n, want)
		}
	}
}
