package benchmark

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/grayzone/grayzone/internal/freeport"
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
