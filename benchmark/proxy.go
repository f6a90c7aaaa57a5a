package benchmark

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/internal/freeport"
	"github.com/grayzone/grayzone/telemetry/record"
)

// ErrProxyToolsMissing is returned when haproxy or wrk is not installed.
var ErrProxyToolsMissing = errors.New("bench proxy needs haproxy and wrk: apt-get install -y haproxy wrk")

// ProxyOptions configure the front-door benchmark.
type ProxyOptions struct {
	Exe         string        // the grayzone binary to re-exec (default: this one)
	Rounds      int           // interleaved rounds (default 5)
	Duration    time.Duration // per round and configuration (default 10 s)
	Connections int           // wrk connections (default 64)
	DrainRate   float64       // paced load for the drain measurement, req/s (default 2000)
	DrainTrials int           // shifts measured per proxy (default 10; <0 skips)
	Progress    io.Writer
}

// ProxyRow is one configuration's medians over the rounds.
type ProxyRow struct {
	RPS         float64  `json:"rps"`
	P50ms       float64  `json:"p50_ms"`
	P99ms       float64  `json:"p99_ms"`
	CPUusPerReq *float64 `json:"cpu_us_per_req"`
	// Drain propagation: µs from the shift decision to the last request
	// reaching the shifted zone's backend (median and max over trials).
	DrainUs    *float64 `json:"drain_us,omitempty"`
	DrainMaxUs *float64 `json:"drain_max_us,omitempty"`

	rounds []proxyRound
	drains []float64
}

type proxyRound struct {
	rps, p50, p99, cpu float64
	requests, errors   int64
}

// ProxyResult is the whole benchmark; JSON has exactly the three rows.
type ProxyResult struct {
	Direct   *ProxyRow `json:"direct"`
	HAProxy  *ProxyRow `json:"haproxy"`
	Grayzone *ProxyRow `json:"grayzone"`

	opts    ProxyOptions
	pinned  bool
	haproxy string
}

// monoNow is CLOCK_MONOTONIC in nanoseconds, comparable across processes on
// this machine. Go's monotonic clock is CLOCK_MONOTONIC too, so it is read
// through time.Since from an anchor calibrated once against clock_gettime
// (accurate to well under a microsecond), which costs no system call.
var monoNow = func() func() int64 {
	var best time.Duration = math.MaxInt64
	var anchor time.Time
	var base int64
	for range 20 {
		t1 := time.Now()
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			panic(err)
		}
		t2 := time.Now()
		if d := t2.Sub(t1); d < best {
			best, anchor, base = d, t1.Add(d/2), ts.Nano()
		}
	}
	return func() int64 { return base + int64(time.Since(anchor)) }
}()

// backendBody is what a benchmark backend answers: 100 bytes.
var backendBody = bytes.Repeat([]byte("x"), 99)

func init() { backendBody = append(backendBody, '\n') }

// Arrivals is a backend's count of customer requests and the
// CLOCK_MONOTONIC time of the latest.
type Arrivals struct {
	Count  int64 `json:"count"`
	LastNs int64 `json:"last_ns"`
}

// RunBackend is `grayzone bench backend`: an HTTP server answering 100
// bytes to every request, /health with 200, and /_arrivals with its
// Arrivals. It prints its address on stdout and serves until ctx ends.
func RunBackend(ctx context.Context, listen string, stdout io.Writer) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	var count, last atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/_arrivals", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(Arrivals{Count: count.Load(), LastNs: last.Load()})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		now := monoNow()
		count.Add(1)
		for {
			l := last.Load()
			if now <= l || last.CompareAndSwap(l, now) {
				break
			}
		}
		h := w.Header()
		h["Content-Type"] = []string{"text/plain"}
		w.Write(backendBody)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	fmt.Fprintln(stdout, ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// FrontDoorInfo is the line `grayzone bench frontdoor` prints on start.
type FrontDoorInfo struct {
	Regional string `json:"regional"` // base URL
	Control  string `json:"control"`  // base URL: /shift, /recorded, /debug/pprof/
	Zones    []string
}

// ShiftReply is the front door's answer to POST /shift: the CLOCK_MONOTONIC
// time just before Table.SetShifted.
type ShiftReply struct {
	AtNs int64 `json:"at_ns"`
}

// RunFrontDoor is `grayzone bench frontdoor`: grayzone's front door
// (frontdoor.StartProxy) over the backends, one zone per backend (az-a,
// az-b, ...), with outcome recording on (drained every 250 ms, the engine's
// resolution) and health checks every second, as in `grayzone serve`. A
// control listener takes POST /shift?zone=Z&away=true|false, answers GET
// /recorded with what the recorder counted, and serves /debug/pprof/.
func RunFrontDoor(ctx context.Context, backends []string, stdout io.Writer) error {
	if len(backends) == 0 {
		return errors.New("no backends")
	}
	var zones []string
	for i := range backends {
		zones = append(zones, "az-"+string(rune('a'+i)))
	}
	table := frontdoor.NewTable(zones, frontdoor.DefaultHealthPolicy)
	for i, b := range backends {
		if err := table.AddTarget(frontdoor.Target{ID: fmt.Sprintf("i-%d", i+1), Zone: zones[i], Addr: b}); err != nil {
			return err
		}
	}
	rec := record.New(record.Options{})
	var recorded, faults atomic.Int64
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				rec.Drain(func(_ record.SeriesKey, d record.Snapshot) {
					recorded.Add(int64(d.Requests))
					faults.Add(int64(d.Faults))
				})
			}
		}
	}()
	p, err := frontdoor.StartProxy(ctx, table, frontdoor.ProxyOptions{Recorder: rec})
	if err != nil {
		return err
	}
	defer p.Close()
	go (&frontdoor.HealthChecker{Table: table, Interval: time.Second}).Run(ctx)

	mux := http.NewServeMux()
	mux.HandleFunc("POST /shift", func(w http.ResponseWriter, r *http.Request) {
		zone, away := r.FormValue("zone"), r.FormValue("away") != "false"
		at := monoNow()
		if err := table.SetShifted(zone, away); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(ShiftReply{AtNs: at})
	})
	mux.HandleFunc("GET /recorded", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]int64{"requests": recorded.Load(), "faults": faults.Load()})
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctl := &http.Server{Handler: mux}
	go func() { <-ctx.Done(); ctl.Close() }()
	go ctl.Serve(ln)
	info := FrontDoorInfo{Regional: p.RegionalURL(), Control: "http://" + ln.Addr().String(), Zones: zones}
	if err := json.NewEncoder(stdout).Encode(info); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// child is a process the benchmark started.
type child struct {
	cmd  *exec.Cmd
	name string
	out  *bufio.Reader
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop ends the child with SIGTERM, then SIGKILL after 3 s.
func (c *child) stop() {
	if c == nil || c.cmd.Process == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// cpuTicks is utime+stime of a process from /proc/PID/stat, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(s[i+1:])
	// After the command: state is field 3, utime 14, stime 15 (1-based).
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return u + st, nil
}

// clockTicksPerSecond is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicksPerSecond = 100

// WrkResult is what one wrk run printed.
type WrkResult struct {
	Requests int64
	RPS      float64
	P50, P99 time.Duration
	Errors   int64 // non-2xx/3xx responses plus socket errors
}

var (
	wrkPct      = regexp.MustCompile(`(?m)^\s*(\d+(?:\.\d+)?)%\s+([\d.]+)\s*(us|ms|s|m|h)\s*$`)
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	wrkRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in `)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSocket   = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// ParseWrk reads the output of `wrk --latency`.
func ParseWrk(out string) (WrkResult, error) {
	var r WrkResult
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk output has no Requests/sec line:\n%s", out)
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m = wrkRequests.FindStringSubmatch(out); m != nil {
		r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	unit := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}
	var got50, got99 bool
	for _, m := range wrkPct.FindAllStringSubmatch(out, -1) {
		p, _ := strconv.ParseFloat(m[1], 64)
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		d := time.Duration(v * unit[m[3]])
		switch p {
		case 50:
			r.P50, got50 = d, true
		case 99:
			r.P99, got99 = d, true
		}
	}
	if !got50 || !got99 {
		return r, fmt.Errorf("wrk output has no 50%%/99%% latency lines (was --latency given?):\n%s", out)
	}
	if m = wrkNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		r.Errors += n
	}
	if m = wrkSocket.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			r.Errors += n
		}
	}
	return r, nil
}

type proxyBench struct {
	opts     ProxyOptions
	pin      bool
	dir      string
	backends []*child
	addrs    []string
	haproxy  *child
	haURL    string
	haSock   string
	fd       *child
	fdInfo   FrontDoorInfo
}

func (b *proxyBench) logf(format string, args ...any) {
	if b.opts.Progress != nil {
		fmt.Fprintf(b.opts.Progress, format+"\n", args...)
	}
}

// command builds a command pinned to cpu with taskset, when available.
func (b *proxyBench) command(ctx context.Context, cpu int, name string, args ...string) *exec.Cmd {
	if b.pin {
		args = append([]string{"-c", strconv.Itoa(cpu), name}, args...)
		name = "taskset"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	// The children die with the benchmark, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 3 * time.Second
	return cmd
}

// start runs a child on CPU 0 and returns it with its stdout.
func (b *proxyBench) start(ctx context.Context, what string, name string, args ...string) (*child, error) {
	cmd := b.command(ctx, 0, name, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", what, err)
	}
	return &child{cmd: cmd, name: what, out: bufio.NewReader(out)}, nil
}

// firstLine reads a child's first stdout line, within 10 s.
func firstLine(c *child) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() { s, err := c.out.ReadString('\n'); ch <- res{strings.TrimSpace(s), err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			return "", fmt.Errorf("%s: reading its address: %w", c.name, r.err)
		}
		go io.Copy(io.Discard, c.out)
		return r.s, nil
	case <-time.After(10 * time.Second):
		return "", fmt.Errorf("%s: no address printed within 10 s", c.name)
	}
}

func (b *proxyBench) startHAProxy(ctx context.Context) error {
	port, err := freeport.Port()
	if err != nil {
		return err
	}
	b.haSock = filepath.Join(b.dir, "admin.sock")
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `global
    nbthread 1
    maxconn 4096
    stats socket %s mode 600 level admin

defaults
    mode http
    option http-keep-alive
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s

frontend fe
    bind 127.0.0.1:%d
    default_backend be

backend be
    balance roundrobin
    http-reuse always
`, b.haSock, port)
	for i, a := range b.addrs {
		fmt.Fprintf(&cfg, "    server s%d %s\n", i+1, a)
	}
	path := filepath.Join(b.dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		return err
	}
	// HAProxy logs each maintenance switch on stderr: keep that in a file.
	logPath := filepath.Join(b.dir, "haproxy.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := b.command(ctx, 0, "haproxy", "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start haproxy: %w", err)
	}
	b.haproxy = &child{cmd: cmd, name: "haproxy"}
	b.haURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitHTTP(ctx, b.haURL+"/bench"); err != nil {
		out, _ := os.ReadFile(logPath)
		return fmt.Errorf("%w\nhaproxy said:\n%s", err, out)
	}
	return nil
}

// waitHTTP polls url until it answers 200, for up to 10 s.
func waitHTTP(ctx context.Context, url string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not answering: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *proxyBench) setup(ctx context.Context) error {
	for i := range 3 {
		c, err := b.start(ctx, fmt.Sprintf("backend %d", i+1), b.opts.Exe, "bench", "backend", "--listen", "127.0.0.1:0")
		if err != nil {
			return err
		}
		b.backends = append(b.backends, c)
		addr, err := firstLine(c)
		if err != nil {
			return err
		}
		b.addrs = append(b.addrs, addr)
	}
	if err := b.startHAProxy(ctx); err != nil {
		return err
	}
	fd, err := b.start(ctx, "front door", b.opts.Exe, "bench", "frontdoor", "--backends", strings.Join(b.addrs, ","))
	if err != nil {
		return err
	}
	b.fd = fd
	line, err := firstLine(fd)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(line), &b.fdInfo); err != nil {
		return fmt.Errorf("front door printed %q: %w", line, err)
	}
	return waitHTTP(ctx, b.fdInfo.Regional+"/bench")
}

func (b *proxyBench) teardown() {
	b.fd.stop()
	b.haproxy.stop()
	for _, c := range b.backends {
		c.stop()
	}
}

// wrk runs one wrk load on CPU 1 and measures the proxy's CPU (pid 0: none).
func (b *proxyBench) wrk(ctx context.Context, url string, d time.Duration, pid int) (proxyRound, error) {
	var before int64
	if pid != 0 {
		var err error
		if before, err = cpuTicks(pid); err != nil {
			return proxyRound{}, err
		}
	}
	secs := max(1, int(d.Round(time.Second)/time.Second))
	cmd := b.command(ctx, 1, "wrk", "-t1", "-c"+strconv.Itoa(b.opts.Connections), "-d"+strconv.Itoa(secs)+"s", "--latency", url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return proxyRound{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	w, err := ParseWrk(string(out))
	if err != nil {
		return proxyRound{}, err
	}
	r := proxyRound{rps: w.RPS, p50: float64(w.P50) / 1e6, p99: float64(w.P99) / 1e6, requests: w.Requests, errors: w.Errors, cpu: math.NaN()}
	if pid != 0 {
		after, err := cpuTicks(pid)
		if err != nil {
			return proxyRound{}, err
		}
		if w.Requests > 0 {
			r.cpu = float64(after-before) / clockTicksPerSecond * 1e6 / float64(w.Requests)
		}
	}
	return r, nil
}

// RunProxy runs the whole benchmark.
func RunProxy(ctx context.Context, o ProxyOptions) (*ProxyResult, error) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		return nil, ErrProxyToolsMissing
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return nil, ErrProxyToolsMissing
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		o.Exe = exe
	}
	if o.Rounds <= 0 {
		o.Rounds = 5
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Connections <= 0 {
		o.Connections = 64
	}
	if o.DrainRate <= 0 {
		o.DrainRate = 2000
	}
	if o.DrainTrials == 0 {
		o.DrainTrials = 10
	}
	b := &proxyBench{opts: o}
	if _, err := exec.LookPath("taskset"); err == nil {
		b.pin = true
	} else {
		b.logf("taskset not found (util-linux): running unpinned")
	}
	dir, err := os.MkdirTemp("", "grayzone-bench-proxy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b.dir = dir
	defer b.teardown()
	if err := b.setup(ctx); err != nil {
		return nil, err
	}
	res := &ProxyResult{Direct: &ProxyRow{}, HAProxy: &ProxyRow{}, Grayzone: &ProxyRow{}, opts: o, pinned: b.pin}
	if out, err := exec.Command("haproxy", "-v").Output(); err == nil {
		res.haproxy = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	type cfg struct {
		name string
		row  *ProxyRow
		url  string
		pid  int
	}
	cfgs := []cfg{
		{"direct", res.Direct, "http://" + b.addrs[0] + "/bench", 0},
		{"haproxy", res.HAProxy, b.haURL + "/bench", b.haproxy.pid()},
		{"grayzone", res.Grayzone, b.fdInfo.Regional + "/bench", b.fd.pid()},
	}
	// Warm up every path (connections, pools, page cache) before measuring.
	for _, c := range cfgs {
		if _, err := b.wrk(ctx, c.url, time.Second, 0); err != nil {
			return nil, fmt.Errorf("%s warm-up: %w", c.name, err)
		}
	}
	for round := 1; round <= o.Rounds; round++ {
		for _, c := range cfgs {
			r, err := b.wrk(ctx, c.url, o.Duration, c.pid)
			if err != nil {
				return nil, fmt.Errorf("%s round %d: %w", c.name, round, err)
			}
			c.row.rounds = append(c.row.rounds, r)
			b.logf("round %d/%d %-8s %9.0f req/s  p50 %6.3f ms  p99 %6.3f ms  cpu %6.2f µs/req  errors %d",
				round, o.Rounds, c.name, r.rps, r.p50, r.p99, r.cpu, r.errors)
		}
	}
	if n, err := RecordedRequests(b.fdInfo.Control); err == nil {
		b.logf("the front door's recorder counted %d requests", n)
	}
	if o.DrainTrials > 0 {
		if res.Grayzone.drains, err = b.drainGrayzone(ctx); err != nil {
			return nil, fmt.Errorf("drain (grayzone): %w", err)
		}
		if res.HAProxy.drains, err = b.drainHAProxy(ctx); err != nil {
			return nil, fmt.Errorf("drain (haproxy): %w", err)
		}
	}
	for _, c := range cfgs {
		c.row.summarise(c.pid != 0)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return res, nil
}

func (r *ProxyRow) summarise(cpu bool) {
	col := func(f func(proxyRound) float64) float64 {
		var v []float64
		for _, x := range r.rounds {
			v = append(v, f(x))
		}
		return median(v)
	}
	r.RPS = col(func(x proxyRound) float64 { return x.rps })
	r.P50ms = col(func(x proxyRound) float64 { return x.p50 })
	r.P99ms = col(func(x proxyRound) float64 { return x.p99 })
	if c := col(func(x proxyRound) float64 { return x.cpu }); cpu && !math.IsNaN(c) {
		r.CPUusPerReq = &c
	}
	if len(r.drains) > 0 {
		m, mx := median(r.drains), slices.Max(r.drains)
		r.DrainUs, r.DrainMaxUs = &m, &mx
	}
}

// pacedLoad sends GETs to url at rate req/s (open loop: on schedule,
// whatever the answers' latency) until stop closes.
func pacedLoad(url string, rate float64, stop <-chan struct{}) (done func() (sent, failed int64)) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	jobs := make(chan struct{}, 4096)
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				resp, err := client.Get(url)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		defer close(jobs)
		interval := time.Duration(float64(time.Second) / rate)
		start := time.Now()
		var n int64
		for {
			select {
			case <-stop:
				return
			default:
			}
			due := int64(time.Since(start) / interval)
			for ; n < due; n++ {
				select {
				case jobs <- struct{}{}:
				default: // overloaded: drop rather than queue without bound
				}
			}
			time.Sleep(interval / 2)
		}
	}()
	return func() (int64, int64) {
		<-finished
		wg.Wait()
		tr.CloseIdleConnections()
		return sent.Load(), failed.Load()
	}
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// drainTrials runs the paced load against url and, trials times, shifts
// the first backend's zone away (shift returns the CLOCK_MONOTONIC time of
// the decision), waits, and measures how long after the decision the last
// request reached that backend; then shifts it back. Negative gaps (the
// zone's last request arrived before the decision) count as 0.
func (b *proxyBench) drainTrials(ctx context.Context, url string, shift func(away bool) (int64, error)) ([]float64, error) {
	stop := make(chan struct{})
	done := pacedLoad(url, b.opts.DrainRate, stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			done()
		}
	}()
	time.Sleep(time.Second)
	var out []float64
	arrivalsURL := "http://" + b.addrs[0] + "/_arrivals"
	for t := 0; t < b.opts.DrainTrials && ctx.Err() == nil; t++ {
		var before Arrivals
		if err := getJSON(arrivalsURL, &before); err != nil {
			return nil, err
		}
		time.Sleep(300 * time.Millisecond)
		at, err := shift(true)
		if err != nil {
			return nil, err
		}
		time.Sleep(300 * time.Millisecond)
		var a Arrivals
		if err := getJSON(arrivalsURL, &a); err != nil {
			return nil, err
		}
		if a.Count == before.Count {
			return nil, fmt.Errorf("the zone got no requests before the shift: is the load reaching it?")
		}
		out = append(out, max(0, float64(a.LastNs-at)/1e3))
		time.Sleep(200 * time.Millisecond)
		var after Arrivals
		if err := getJSON(arrivalsURL, &after); err != nil {
			return nil, err
		}
		if after.Count != a.Count {
			return nil, fmt.Errorf("the shifted zone still gets requests %v after the shift", 500*time.Millisecond)
		}
		if _, err := shift(false); err != nil {
			return nil, err
		}
	}
	close(stop)
	sent, failed := done()
	b.logf("drain %s: %d trials at %.0f req/s: %d requests, %d failed; µs after the decision: %v", url, len(out), b.opts.DrainRate, sent, failed, roundAll(out))
	return out, ctx.Err()
}

func roundAll(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = math.Round(x*10) / 10
	}
	return out
}

func (b *proxyBench) drainGrayzone(ctx context.Context) ([]float64, error) {
	zone := b.fdInfo.Zones[0]
	return b.drainTrials(ctx, b.fdInfo.Regional+"/bench", func(away bool) (int64, error) {
		resp, err := http.PostForm(b.fdInfo.Control+"/shift", map[string][]string{"zone": {zone}, "away": {strconv.FormatBool(away)}})
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var r ShiftReply
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return 0, err
		}
		return r.AtNs, nil
	})
}

// drainHAProxy does the same through HAProxy's runtime API: the decision
// time is taken just before `set server be/s1 state maint` is written.
func (b *proxyBench) drainHAProxy(ctx context.Context) ([]float64, error) {
	return b.drainTrials(ctx, b.haURL+"/bench", func(away bool) (int64, error) {
		state := "ready"
		if away {
			state = "maint"
		}
		c, err := net.Dial("unix", b.haSock)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		at := monoNow()
		if _, err := io.WriteString(c, "set server be/s1 state "+state+"\n"); err != nil {
			return 0, err
		}
		reply, _ := io.ReadAll(c)
		if s := strings.TrimSpace(string(reply)); s != "" {
			return 0, fmt.Errorf("haproxy: %s", s)
		}
		return at, nil
	})
}

func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// Print writes the tables.
func (r *ProxyResult) Print(w io.Writer) {
	pin := "proxies and backends pinned to CPU 0, wrk to CPU 1 (taskset)"
	if !r.pinned {
		pin = "unpinned (taskset not found)"
	}
	fmt.Fprintf(w, "Front door vs %s: 3 backends (100-byte answers), wrk -t1 -c%d --latency, %d interleaved rounds of %v, medians; %s.\n\n",
		r.haproxy, r.opts.Connections, r.opts.Rounds, r.opts.Duration, pin)
	fmt.Fprintf(w, "| | req/s | p50 ms | p99 ms | proxy CPU µs/req | req/s ÷ HAProxy | p99 ÷ HAProxy | CPU ÷ HAProxy |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|\n")
	h := r.HAProxy
	for _, x := range []struct {
		name string
		row  *ProxyRow
	}{{"direct (one backend)", r.Direct}, {"HAProxy", r.HAProxy}, {"grayzone front door", r.Grayzone}} {
		cpu, cpuRatio := "–", "–"
		if x.row.CPUusPerReq != nil {
			cpu = fmt.Sprintf("%.2f", *x.row.CPUusPerReq)
			if h.CPUusPerReq != nil {
				cpuRatio = ratio(*x.row.CPUusPerReq, *h.CPUusPerReq)
			}
		}
		fmt.Fprintf(w, "| %s | %.0f | %.3f | %.3f | %s | %s | %s | %s |\n", x.name, x.row.RPS, x.row.P50ms, x.row.P99ms, cpu,
			ratio(x.row.RPS, h.RPS), ratio(x.row.P99ms, h.P99ms), cpuRatio)
	}
	if r.Grayzone.DrainUs != nil {
		fmt.Fprintf(w, "\nDrain propagation at %.0f req/s (paced), %d shifts each: time from the shift decision to the last request reaching the shifted zone's backend (CLOCK_MONOTONIC; 0 when it arrived before the decision).\n\n",
			r.opts.DrainRate, r.opts.DrainTrials)
		fmt.Fprintf(w, "| | median µs | max µs | how |\n|---|---|---|---|\n")
		fmt.Fprintf(w, "| grayzone front door | %.1f | %.1f | Table.SetShifted in the front door process |\n", *r.Grayzone.DrainUs, *r.Grayzone.DrainMaxUs)
		if r.HAProxy.DrainUs != nil {
			fmt.Fprintf(w, "| HAProxy | %.1f | %.1f | `set server be/s1 state maint` on the runtime API |\n", *r.HAProxy.DrainUs, *r.HAProxy.DrainMaxUs)
		}
	}
	fmt.Fprintf(w, "\nRounds (req/s, p99 ms, CPU µs/req):\n\n")
	for _, x := range []struct {
		name string
		row  *ProxyRow
	}{{"direct", r.Direct}, {"haproxy", r.HAProxy}, {"grayzone", r.Grayzone}} {
		var parts []string
		for _, rd := range x.row.rounds {
			s := fmt.Sprintf("%.0f/%.3f", rd.rps, rd.p99)
			if !math.IsNaN(rd.cpu) {
				s += fmt.Sprintf("/%.2f", rd.cpu)
			}
			if rd.errors > 0 {
				s += fmt.Sprintf(" (%d errors)", rd.errors)
			}
			parts = append(parts, s)
		}
		fmt.Fprintf(w, "- %s: %s\n", x.name, strings.Join(parts, ", "))
	}
}

// RecordedRequests asks a running bench front door what its recorder counted.
func RecordedRequests(control string) (int64, error) {
	var m map[string]int64
	err := getJSON(control+"/recorded", &m)
	return m["requests"], err
}
