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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/grayzone/grayzone/actuator/xds"
	"github.com/grayzone/grayzone/internal/freeport"
)

// ErrProxyToolsMissing is returned when haproxy or wrk is not installed.
var ErrProxyToolsMissing = errors.New("bench proxy needs haproxy and wrk: apt-get install -y haproxy wrk")

// ProxyOptions configure the front-door benchmark.
type ProxyOptions struct {
	Exe         string        // the grayzone binary to re-exec (default: this one)
	Rounds      int           // measured interleaved rounds (default 7)
	Warmup      int           // whole rounds run first and discarded (default 1; <0: none)
	Duration    time.Duration // per round and configuration (default 10 s)
	Connections int           // wrk connections (default 64)
	// GoMaxProcs is GOMAXPROCS for the two Go front doors (0: Go's own
	// choice, the CPUs the process may run on: 1 when pinned). With one
	// P, the runtime hands the P to another thread when a system call
	// outlasts a sysmon tick; a second P on the same CPU avoids that.
	GoMaxProcs  int
	DrainRate   float64 // paced load for the drain measurement, req/s (default 2000)
	DrainTrials int     // shifts measured per proxy (default 10; <0 skips)
	// Floor adds a fifth configuration: the floor proxy (`grayzone bench
	// floorproxy`, floorproxy.go), the cheapest Go proxy, with no
	// protections: what a Go front door could cost per request at best.
	Floor    bool
	Progress io.Writer
}

// Spread is a quantity over the measured rounds.
type Spread struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

func spreadOf(v []float64) *Spread {
	v = slices.DeleteFunc(slices.Clone(v), func(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) })
	if len(v) == 0 {
		return nil
	}
	return &Spread{Min: slices.Min(v), Median: median(v), Max: slices.Max(v)}
}

// ProxyRow is one configuration's medians over the rounds, and its ratios
// to HAProxy: each round's value over HAProxy's in the same round, spread
// over the rounds (their median is the headline ratio).
type ProxyRow struct {
	RPS         float64  `json:"rps"`
	P50ms       float64  `json:"p50_ms"`
	P99ms       float64  `json:"p99_ms"`
	CPUusPerReq *float64 `json:"cpu_us_per_req"`
	RPSRatio    *Spread  `json:"rps_vs_haproxy,omitempty"`
	P99Ratio    *Spread  `json:"p99_vs_haproxy,omitempty"`
	CPURatio    *Spread  `json:"cpu_vs_haproxy,omitempty"`
	// Medians over the rounds of ProxyRound's Reads, Writes and Switches.
	ReadsPerReq    *float64 `json:"reads_per_req,omitempty"`
	WritesPerReq   *float64 `json:"writes_per_req,omitempty"`
	SwitchesPerReq *float64 `json:"switches_per_req,omitempty"`
	KernelPct      *float64 `json:"kernel_pct,omitempty"`
	OthersPct      *Spread  `json:"others_on_proxy_cpu_pct,omitempty"`
	// Drain propagation: µs from the shift decision to the last request
	// reaching the shifted zone's backend (median and max over trials).
	DrainUs    *float64     `json:"drain_us,omitempty"`
	DrainMaxUs *float64     `json:"drain_max_us,omitempty"`
	Rounds     []ProxyRound `json:"rounds"`

	drains []float64
}

// ProxyRound is one wrk run of a configuration.
type ProxyRound struct {
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	CPU      float64 `json:"cpu_us_per_req"` // NaN (null in JSON) when not measured
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	// The proxy process's read(2) and write(2) calls per request (nil for
	// HAProxy, whose recv/send calls the kernel does not count in
	// /proc/PID/io) and its context switches per request, all threads.
	Reads    *float64 `json:"reads_per_req,omitempty"`
	Writes   *float64 `json:"writes_per_req,omitempty"`
	Switches *float64 `json:"switches_per_req,omitempty"`
	// Kernel is the share of the proxy's CPU time spent in the kernel
	// (stime of utime+stime, /proc/PID/stat), in %.
	Kernel *float64 `json:"kernel_pct,omitempty"`
	// Others is the share of the proxy's CPU that other processes used
	// during the round, in % (pinned runs only): a busy neighbour there
	// costs HAProxy, one thread with its fair share, more than a Go
	// process whose runtime hands its P to another thread when one is
	// descheduled, which made whole runs disagree.
	Others *float64 `json:"others_on_proxy_cpu_pct,omitempty"`
}

// MarshalJSON writes an unmeasured CPU as null.
func (r ProxyRound) MarshalJSON() ([]byte, error) {
	type plain ProxyRound
	var cpu *float64
	if !math.IsNaN(r.CPU) {
		cpu = &r.CPU
	}
	return json.Marshal(struct {
		plain
		CPU *float64 `json:"cpu_us_per_req"`
	}{plain(r), cpu})
}

// ProxyResult is the whole benchmark.
type ProxyResult struct {
	Direct   *ProxyRow `json:"direct"`
	HAProxy  *ProxyRow `json:"haproxy"`
	Grayzone *ProxyRow `json:"grayzone"`           // the embedded front door (frontdoor.StartProxy, as in serve)
	Process  *ProxyRow `json:"grayzone_frontdoor"` // `grayzone frontdoor`, fed over xDS with mutual TLS
	Floor    *ProxyRow `json:"floor,omitempty"`    // with --floor: the floor proxy, no protections, not a product
	Machine  Machine   `json:"machine"`

	opts      ProxyOptions
	placement string
	loadSide  string
	haproxy   string
}

// Machine is what else the machine did during the run.
type Machine struct {
	CPUs      int     `json:"cpus"`
	LoadStart string  `json:"load_start"` // /proc/loadavg's 1, 5 and 15-minute load averages
	LoadEnd   string  `json:"load_end"`
	StealPct  float64 `json:"steal_pct"` // CPU time stolen by the hypervisor, over all CPUs
}

// Targets of issue 23, against HAProxy in the same run.
const (
	targetRPS = 1.2 // at least
	targetP99 = 1.0 // at most
	targetCPU = 0.8 // at most
)

type proxyBench struct {
	opts     ProxyOptions
	pin      bool
	proxyCPU int   // the proxies under test, each alone on it while measured
	loadCPUs []int // wrk on the first, the backends round-robin over the rest (or the first)
	dir      string
	backends []*child
	addrs    []string
	haproxy  *child
	haURL    string
	haSock   string
	fd       *child
	fdInfo   FrontDoorInfo
	proc     *frontDoorProcess
	procURL  string
	floor    *child
	floorURL string
}

func (b *proxyBench) logf(format string, args ...any) {
	if b.opts.Progress != nil {
		fmt.Fprintf(b.opts.Progress, format+"\n", args...)
	}
}

// place decides the CPUs: the proxy under test alone on CPU 0 (the three
// proxies take turns; the idle ones only answer health checks), wrk on CPU
// 1, the backends on CPUs of their own from CPU 2 when the machine has
// them, else beside wrk. Backends beside the proxy (the old placement)
// made the proxy's req/s depend on how the scheduler shared one CPU
// between four busy processes, which changed from run to run.
func (b *proxyBench) place(ncpu int) string {
	if _, err := exec.LookPath("taskset"); err != nil || ncpu < 2 {
		b.pin = false
		return "unpinned (taskset not found, or one CPU)"
	}
	b.pin = true
	b.proxyCPU = 0
	b.loadCPUs = []int{1}
	for c := 2; c < ncpu && c < 5; c++ {
		b.loadCPUs = append(b.loadCPUs, c)
	}
	if len(b.loadCPUs) == 1 {
		return "the proxy under test alone on CPU 0; wrk and the backends on CPU 1 (taskset)"
	}
	return fmt.Sprintf("the proxy under test alone on CPU 0; wrk on CPU 1; backends on CPUs %v (taskset)", b.loadCPUs[1:])
}

func (b *proxyBench) backendCPU(i int) int {
	if len(b.loadCPUs) == 1 {
		return b.loadCPUs[0]
	}
	rest := b.loadCPUs[1:]
	return rest[i%len(rest)]
}

// command builds a command pinned to cpu with taskset, when pinning.
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

// start runs a child on cpu, with env added to the bench's environment,
// and returns it with its stdout.
func (b *proxyBench) start(ctx context.Context, cpu int, env []string, what string, name string, args ...string) (*child, error) {
	cmd := b.command(ctx, cpu, name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
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
	cmd := b.command(ctx, b.proxyCPU, "haproxy", "-db", "-f", path)
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
		c, err := b.start(ctx, b.backendCPU(i), nil, fmt.Sprintf("backend %d", i+1), b.opts.Exe, "bench", "backend", "--listen", "127.0.0.1:0")
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
	fd, err := b.start(ctx, b.proxyCPU, b.goEnv(), "front door", b.opts.Exe, "bench", "frontdoor", "--backends", strings.Join(b.addrs, ","))
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
	if err := waitHTTP(ctx, b.fdInfo.Regional+"/bench"); err != nil {
		return err
	}
	if err := b.startProcess(ctx); err != nil {
		return err
	}
	if b.opts.Floor {
		return b.startFloor(ctx)
	}
	return nil
}

// startFloor runs the floor proxy on the proxies' CPU. It sets GOMAXPROCS
// to 1 itself, whatever --gomaxprocs says: one thread is what it measures.
func (b *proxyBench) startFloor(ctx context.Context) error {
	c, err := b.start(ctx, b.proxyCPU, nil, "floor proxy", b.opts.Exe, "bench", "floorproxy", "--listen", "127.0.0.1:0", "--backends", strings.Join(b.addrs, ","))
	if err != nil {
		return err
	}
	b.floor = c
	addr, err := firstLine(c)
	if err != nil {
		return err
	}
	b.floorURL = "http://" + addr
	return waitHTTP(ctx, b.floorURL+"/bench")
}

// startProcess runs `grayzone frontdoor` (startFrontDoorProcess) over the
// backends, one zone each, on the proxies' CPU.
func (b *proxyBench) startProcess(ctx context.Context) error {
	var targets []xds.Target
	for i, a := range b.addrs {
		targets = append(targets, xds.Target{ID: fmt.Sprintf("i-%d", i+1), Zone: benchZones[i], Addr: a})
	}
	cpu := -1
	if b.pin {
		cpu = b.proxyCPU
	}
	var err error
	if b.proc, err = startFrontDoorProcess(ctx, b.opts.Exe, b.dir, cpu, b.goEnv(), targets); err != nil {
		return err
	}
	b.procURL = "http://" + b.proc.Regional
	// 200 only once the state arrived over xDS and the targets are up.
	return waitHTTP(ctx, b.procURL+"/bench")
}

// goEnv is the environment added for the Go front doors: GOMAXPROCS when set.
func (b *proxyBench) goEnv() []string {
	if b.opts.GoMaxProcs <= 0 {
		return nil
	}
	return []string{"GOMAXPROCS=" + strconv.Itoa(b.opts.GoMaxProcs)}
}

func (b *proxyBench) teardown() {
	b.proc.close()
	b.fd.stop()
	b.floor.stop()
	b.haproxy.stop()
	for _, c := range b.backends {
		c.stop()
	}
}

// wrk runs one wrk load on the load CPU and measures the proxy's CPU (pid
// 0: none) from its own accounting: utime+stime of that process alone.
func (b *proxyBench) wrk(ctx context.Context, url string, d time.Duration, pid int) (ProxyRound, error) {
	var before procCPU
	var countsBefore procCounts
	if pid != 0 {
		var err error
		if before, err = cpuTimes(pid); err != nil {
			return ProxyRound{}, err
		}
		countsBefore = readProcCounts(pid)
	}
	cpuBefore := readCPUBusy(b.proxyCPU)
	secs := max(1, int(d.Round(time.Second)/time.Second))
	var cpu int
	if b.pin {
		cpu = b.loadCPUs[0]
	}
	cmd := b.command(ctx, cpu, "wrk", "-t1", "-c"+strconv.Itoa(b.opts.Connections), "-d"+strconv.Itoa(secs)+"s", "--latency", url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return ProxyRound{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	w, err := ParseWrk(string(out))
	if err != nil {
		return ProxyRound{}, err
	}
	r := ProxyRound{RPS: w.RPS, P50ms: float64(w.P50) / 1e6, P99ms: float64(w.P99) / 1e6, Requests: w.Requests, Errors: w.Errors, CPU: math.NaN()}
	if pid != 0 {
		after, err := cpuTimes(pid)
		if err != nil {
			return ProxyRound{}, err
		}
		used := after.sub(before)
		if used.total() > 0 {
			k := 100 * float64(used.system) / float64(used.total())
			r.Kernel = &k
		}
		if w.Requests > 0 {
			r.CPU = float64(used.total()) / clockTicksPerSecond * 1e6 / float64(w.Requests)
			if b.pin {
				if others, ok := cpuBefore.othersPct(readCPUBusy(b.proxyCPU), used.total()); ok {
					r.Others = &others
				}
			}
			c := readProcCounts(pid)
			per := func(n int64) *float64 { v := float64(n) / float64(w.Requests); return &v }
			r.Switches = per(c.switches - countsBefore.switches)
			if c.io && countsBefore.io && c.reads+c.writes > countsBefore.reads+countsBefore.writes {
				r.Reads, r.Writes = per(c.reads-countsBefore.reads), per(c.writes-countsBefore.writes)
			}
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
		o.Rounds = 7
	}
	if o.Warmup == 0 {
		o.Warmup = 1
	}
	o.Warmup = max(0, o.Warmup)
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
	res := &ProxyResult{Direct: &ProxyRow{}, HAProxy: &ProxyRow{}, Grayzone: &ProxyRow{}, Process: &ProxyRow{}, opts: o}
	if o.Floor {
		res.Floor = &ProxyRow{}
	}
	res.Machine.CPUs = runtime.NumCPU()
	res.placement = b.place(res.Machine.CPUs)
	res.loadSide = "unpinned"
	if b.pin {
		res.loadSide = fmt.Sprintf("CPU %d", b.loadCPUs[0])
		if len(b.loadCPUs) > 1 {
			res.loadSide = fmt.Sprintf("CPUs %d and %d", b.loadCPUs[0], b.backendCPU(0))
		}
	}
	if !b.pin {
		b.logf("running unpinned: %s", res.placement)
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
		{"embedded", res.Grayzone, b.fdInfo.Regional + "/bench", b.fd.pid()},
		{"frontdoor", res.Process, b.procURL + "/bench", b.proc.pid()},
	}
	if o.Floor {
		cfgs = append(cfgs, cfg{"floor", res.Floor, b.floorURL + "/bench", b.floor.pid()})
	}
	res.Machine.LoadStart = loadAverage()
	stealStart := readSteal()
	// Whole rounds first, discarded: connections to the backends, pools,
	// the Go runtimes' heaps and the CPUs' caches and clocks settle.
	// Each round rotates the order, so that no configuration always runs
	// right after the same other one.
	for round := 1 - o.Warmup; round <= o.Rounds; round++ {
		for i := range cfgs {
			c := cfgs[(i+round+o.Warmup)%len(cfgs)]
			r, err := b.wrk(ctx, c.url, o.Duration, c.pid)
			if err != nil {
				return nil, fmt.Errorf("%s round %d: %w", c.name, round, err)
			}
			what := fmt.Sprintf("round %d/%d", round, o.Rounds)
			if round <= 0 {
				what = "warm-up (discarded)"
			} else {
				c.row.Rounds = append(c.row.Rounds, r)
			}
			b.logf("%s %-9s %9.0f req/s  p50 %6.3f ms  p99 %6.3f ms  cpu %6.2f µs/req  errors %d",
				what, c.name, r.RPS, r.P50ms, r.P99ms, r.CPU, r.Errors)
		}
	}
	res.Machine.LoadEnd = loadAverage()
	res.Machine.StealPct = stealStart.pctTo(readSteal())
	if n, err := RecordedRequests(b.fdInfo.Control); err == nil {
		b.logf("the embedded front door's recorder counted %d requests", n)
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
		c.row.summarise(c.pid != 0, res.HAProxy)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return res, nil
}

// steal is the machine's total and stolen CPU ticks (/proc/stat).
type steal struct{ total, stolen int64 }

func readSteal() steal {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return steal{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var s steal
	for i, x := range f[1:] {
		v, _ := strconv.ParseInt(x, 10, 64)
		if i < 8 { // user nice system idle iowait irq softirq steal; guest is in user
			s.total += v
		}
		if i == 7 {
			s.stolen = v
		}
	}
	return s
}

// cpuBusy is one CPU's busy and total ticks (/proc/stat's cpuN line).
type cpuBusy struct{ busy, total int64 }

func readCPUBusy(cpu int) cpuBusy {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuBusy{}
	}
	prefix := fmt.Sprintf("cpu%d ", cpu)
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		var c cpuBusy
		for i, x := range strings.Fields(line)[1:] {
			v, _ := strconv.ParseInt(x, 10, 64)
			if i < 8 { // user nice system idle iowait irq softirq steal
				c.total += v
				if i != 3 && i != 4 && i != 7 {
					c.busy += v
				}
			}
		}
		return c
	}
	return cpuBusy{}
}

// othersPct is the share of the CPU's time, since s, that went to other
// processes than the one that used proxyTicks of it.
func (s cpuBusy) othersPct(e cpuBusy, proxyTicks int64) (float64, bool) {
	if e.total <= s.total {
		return 0, false
	}
	return max(0, 100*float64(e.busy-s.busy-proxyTicks)/float64(e.total-s.total)), true
}

func (s steal) pctTo(e steal) float64 {
	if e.total <= s.total {
		return math.NaN()
	}
	return 100 * float64(e.stolen-s.stolen) / float64(e.total-s.total)
}

func (r *ProxyRow) summarise(cpu bool, ha *ProxyRow) {
	col := func(rs []ProxyRound, f func(ProxyRound) float64) []float64 {
		var v []float64
		for _, x := range rs {
			v = append(v, f(x))
		}
		return v
	}
	rps := func(x ProxyRound) float64 { return x.RPS }
	p99 := func(x ProxyRound) float64 { return x.P99ms }
	cpuOf := func(x ProxyRound) float64 { return x.CPU }
	r.RPS = median(col(r.Rounds, rps))
	r.P50ms = median(col(r.Rounds, func(x ProxyRound) float64 { return x.P50ms }))
	r.P99ms = median(col(r.Rounds, p99))
	if c := median(col(r.Rounds, cpuOf)); cpu && !math.IsNaN(c) {
		r.CPUusPerReq = &c
	}
	r.ReadsPerReq = medianOf(r.Rounds, func(x ProxyRound) *float64 { return x.Reads })
	r.WritesPerReq = medianOf(r.Rounds, func(x ProxyRound) *float64 { return x.Writes })
	r.SwitchesPerReq = medianOf(r.Rounds, func(x ProxyRound) *float64 { return x.Switches })
	r.KernelPct = medianOf(r.Rounds, func(x ProxyRound) *float64 { return x.Kernel })
	var others []float64
	for _, x := range r.Rounds {
		if x.Others != nil {
			others = append(others, *x.Others)
		}
	}
	r.OthersPct = spreadOf(others)
	// Each round against HAProxy's in the same round: what the machine did
	// meanwhile weighs on both alike.
	paired := func(f func(ProxyRound) float64) *Spread {
		var v []float64
		for i := range min(len(r.Rounds), len(ha.Rounds)) {
			v = append(v, f(r.Rounds[i])/f(ha.Rounds[i]))
		}
		return spreadOf(v)
	}
	r.RPSRatio, r.P99Ratio = paired(rps), paired(p99)
	if cpu {
		r.CPURatio = paired(cpuOf)
	}
	if len(r.drains) > 0 {
		m, mx := median(r.drains), slices.Max(r.drains)
		r.DrainUs, r.DrainMaxUs = &m, &mx
	}
}

// medianOf is the median of a per-round count over the rounds that have it.
func medianOf(rs []ProxyRound, f func(ProxyRound) *float64) *float64 {
	var v []float64
	for _, x := range rs {
		if p := f(x); p != nil {
			v = append(v, *p)
		}
	}
	if len(v) == 0 {
		return nil
	}
	m := median(v)
	return &m
}

// ratio formats a spread of ratios: the median, then min–max.
func ratio(s *Spread) string {
	if s == nil {
		return "–"
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", s.Median, s.Min, s.Max)
}

func perReq(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf("%.2f", *v)
}

// meets says which of issue 23's targets a row misses.
func (r *ProxyRow) meets() string {
	var miss []string
	if r.RPSRatio == nil || r.RPSRatio.Median < targetRPS {
		miss = append(miss, "req/s")
	}
	if r.P99Ratio == nil || r.P99Ratio.Median > targetP99 {
		miss = append(miss, "p99")
	}
	if r.CPURatio == nil || r.CPURatio.Median > targetCPU {
		miss = append(miss, "CPU")
	}
	if len(miss) == 0 {
		return "met"
	}
	return "missed: " + strings.Join(miss, ", ")
}

// floorRowName names the floor proxy's row: it protects nothing and is no product.
const floorRowName = "Go epoll floor (no protections; not a product)"

// Print writes the tables.
func (r *ProxyResult) Print(w io.Writer) {
	fmt.Fprintf(w, "Front door vs %s: 3 backends (100-byte answers), wrk -t1 -c%d --latency, %d interleaved rounds of %v after %d discarded (order rotated each round); %s. CPU per request: utime+stime of the proxy process alone (/proc/PID/stat) over the round, divided by wrk's requests. Ratios: each round against HAProxy's in the same round, median (min–max over the rounds).\n\n",
		r.haproxy, r.opts.Connections, r.opts.Rounds, r.opts.Duration, r.opts.Warmup, r.placement)
	if r.opts.GoMaxProcs > 0 {
		fmt.Fprintf(w, "The Go front doors ran with GOMAXPROCS=%d.\n\n", r.opts.GoMaxProcs)
	}
	fmt.Fprintf(w, "Machine: load average %s at the start of the rounds, %s at their end; %.1f %% of CPU time stolen by the hypervisor meanwhile.\n\n",
		r.Machine.LoadStart, r.Machine.LoadEnd, r.Machine.StealPct)
	if r.Floor != nil {
		fmt.Fprintf(w, "The floor row is `grayzone bench floorproxy` (benchmark/floorproxy.go): one thread, a level-triggered epoll loop on raw sockets, one kept-alive backend connection per client connection, no protections at all. Not a product: what a Go front door could cost per request at best on this machine, placed and measured as the others.\n\n")
	}
	fmt.Fprintf(w, "| | req/s | p50 ms | p99 ms | proxy CPU µs/req | req/s ÷ HAProxy | p99 ÷ HAProxy | CPU ÷ HAProxy | targets (≥ %.1f×, ≤ %.1f×, ≤ %.1f×) |\n", targetRPS, targetP99, targetCPU)
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|\n")
	type printed struct {
		name, key string // in the tables, in the rounds' list
		row       *ProxyRow
		target    bool // against issue 23's targets
	}
	rows := []printed{{"direct (one backend)", "direct", r.Direct, false}, {"HAProxy", "haproxy", r.HAProxy, false},
		{"grayzone front door (embedded)", "embedded", r.Grayzone, true}, {"`grayzone frontdoor` (xDS, mTLS)", "frontdoor", r.Process, true}}
	if r.Floor != nil {
		rows = append(rows, printed{floorRowName, "floor", r.Floor, true})
	}
	for _, x := range rows {
		cpu := "–"
		if x.row.CPUusPerReq != nil {
			cpu = fmt.Sprintf("%.2f", *x.row.CPUusPerReq)
		}
		target := "–"
		if x.target {
			target = x.row.meets()
		}
		fmt.Fprintf(w, "| %s | %.0f | %.3f | %.3f | %s | %s | %s | %s | %s |\n", x.name, x.row.RPS, x.row.P50ms, x.row.P99ms, cpu,
			ratio(x.row.RPSRatio), ratio(x.row.P99Ratio), ratio(x.row.CPURatio), target)
	}
	fmt.Fprintf(w, "\nSystem calls and context switches per request (medians over the rounds), counted by the kernel for the proxy process, so they hold under any load, unlike its CPU: read(2) and write(2) calls from /proc/PID/io (HAProxy's recv and send calls are not counted there: `strace -c -f -p PID` shows them); context switches, voluntary and involuntary, summed over its threads. One read and one write per message in each direction is 2 and 2 per request; a read beyond that found its socket empty (EAGAIN). Kernel share: the proxy's stime of its utime+stime over the round (/proc/PID/stat, median over the rounds). Others on the proxy's CPU: its busy time (/proc/stat) less the proxy's own; the idle proxies' health checks are in it; more than a few %% means a neighbour took CPU from the proxy under test, which costs HAProxy (one thread) more req/s than a Go process.\n\n")
	fmt.Fprintf(w, "| | read/req | write/req | context switches/req | kernel share of its CPU, %% | others on the proxy's CPU, %% of the round (median, min–max) |\n|---|---|---|---|---|---|\n")
	for _, x := range rows[1:] {
		others := "–"
		if o := x.row.OthersPct; o != nil {
			others = fmt.Sprintf("%.1f (%.1f–%.1f)", o.Median, o.Min, o.Max)
		}
		kernel := "–"
		if k := x.row.KernelPct; k != nil {
			kernel = fmt.Sprintf("%.0f", *k)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", x.name, perReq(x.row.ReadsPerReq), perReq(x.row.WritesPerReq), perReq(x.row.SwitchesPerReq), kernel, others)
	}
	fmt.Fprintf(w, "\nThe direct row is what the load side (wrk and a backend, %s) does without a proxy: a proxy row close to it was held back by the load side, not by the proxy.\n", r.loadSide)
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
	for _, x := range rows {
		var parts []string
		for _, rd := range x.row.Rounds {
			s := fmt.Sprintf("%.0f/%.3f", rd.RPS, rd.P99ms)
			if !math.IsNaN(rd.CPU) {
				s += fmt.Sprintf("/%.2f", rd.CPU)
			}
			if rd.Errors > 0 {
				s += fmt.Sprintf(" (%d errors)", rd.Errors)
			}
			parts = append(parts, s)
		}
		fmt.Fprintf(w, "- %s: %s\n", x.key, strings.Join(parts, ", "))
	}
}
