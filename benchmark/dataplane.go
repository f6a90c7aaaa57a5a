package benchmark

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	xdsgrpc "google.golang.org/grpc/xds" // the xDS resolver and balancers of proxyless gRPC

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/actuator/haproxy"
	"github.com/grayzone/grayzone/actuator/xds"
	"github.com/grayzone/grayzone/internal/freeport"
)

// Data planes `bench dataplane` measures.
const (
	PlaneEmbedded        = "embedded"         // the front door in the deciding process
	PlaneEmbeddedProcess = "embedded_process" // `grayzone frontdoor`, fed over xDS
	PlaneHAProxy         = "haproxy"          // a real HAProxy, through its runtime API
	PlaneHAProxyEpoch    = "haproxy_epoch"    // the same, its orders carrying a leader's epoch (the epoch record read first)
	PlaneXDS             = "xds_grpc"         // grpc-go's proxyless xDS client
)

// DataPlanes lists them in the order they run.
var DataPlanes = []string{PlaneEmbedded, PlaneEmbeddedProcess, PlaneHAProxy, PlaneHAProxyEpoch, PlaneXDS}

// DataplaneOptions configure RunDataplane.
type DataplaneOptions struct {
	Planes      []string      // default DataPlanes
	Shifts      int           // shifts measured per plane (default 50)
	Concurrency int           // request loops (default 4)
	Quiet       time.Duration // a shift is done when the zone got no new request for this long (default 250ms)
	Exe         string        // the grayzone binary, for embedded_process (default: this executable)
	// Pin binds the bench (customers, backends, the in-process planes) to
	// CPU 0 and each data plane that is its own process (HAProxy, grayzone
	// frontdoor) to CPU 1, as a deployment gives its proxy its own cores.
	// Unpinned, on two cores, a proxy's event loop waits behind the
	// customers' loops, and that wait is measured as the data plane's.
	Pin      bool
	Progress io.Writer
}

// pinCPU is the CPU the bench gives a data plane process under Pin.
const pinCPU = 1

// pinSelf binds every thread of this process to CPU 0; threads started
// later inherit it from the thread that starts them.
func pinSelf() error {
	if runtime.NumCPU() < 2 {
		return fmt.Errorf("--pin needs two CPUs, this machine has %d", runtime.NumCPU())
	}
	var set unix.CPUSet
	set.Set(0)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("pin thread %d to CPU 0: %w", tid, err)
		}
	}
	return nil
}

// DataplaneResult is one data plane's figures, in milliseconds.
type DataplaneResult struct {
	// From the decision to the last request sent after it that reached the
	// shifted zone (0 when none did); requests already in flight at the
	// decision are not counted.
	ShiftP50ms float64 `json:"shift_p50_ms"`
	ShiftP99ms float64 `json:"shift_p99_ms"`
	// From the decision to end the shift to the first request that reached
	// the zone again.
	UnshiftP50ms float64 `json:"unshift_p50_ms"`
	UnshiftP99ms float64 `json:"unshift_p99_ms"`
	Shifts       int     `json:"shifts"`
	Requests     int64   `json:"requests"`
	Failed       int64   `json:"failed"`
}

// ErrPlaneUnavailable marks a data plane that cannot run here (no haproxy).
var ErrPlaneUnavailable = errors.New("data plane unavailable")

// arrivals records, per zone, when requests reached it and when they were
// sent, on one monotonic clock (every backend runs in this process).
type arrivals struct {
	base time.Time
	mu   sync.Mutex
	last map[string]time.Duration // zone -> latest arrival of a request sent at or after mark
	// first map: zone -> first arrival of a request sent at or after mark
	first map[string]time.Duration
	mark  time.Duration
}

func newArrivals() *arrivals {
	return &arrivals{base: time.Now(), last: map[string]time.Duration{}, first: map[string]time.Duration{}}
}

func (a *arrivals) now() time.Duration { return time.Since(a.base) }

func (a *arrivals) record(zone string, sent time.Duration) {
	at := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if sent < a.mark {
		return // in flight at the decision
	}
	if at > a.last[zone] {
		a.last[zone] = at
	}
	if f, ok := a.first[zone]; !ok || at < f {
		a.first[zone] = at
	}
}

// reset starts counting requests sent from now; it returns now.
func (a *arrivals) reset() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mark = a.now()
	clear(a.last)
	clear(a.first)
	return a.mark
}

func (a *arrivals) get(zone string) (first, last time.Duration, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, ok := a.first[zone]
	return f, a.last[zone], ok
}

// plane is one data plane under test: where customers send, and how a
// decision reaches it.
type plane struct {
	send  func(ctx context.Context, sent time.Duration) error // one customer request
	shift func(ctx context.Context, away bool) error
	close func()
}

const sentHeader = "X-Grayzone-Bench-Sent" // ns since the bench's base, set by the sender

// RunDataplane measures each data plane and returns its figures by name.
func RunDataplane(ctx context.Context, o DataplaneOptions) (map[string]DataplaneResult, error) {
	if len(o.Planes) == 0 {
		o.Planes = DataPlanes
	}
	if o.Shifts <= 0 {
		o.Shifts = 50
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Quiet <= 0 {
		o.Quiet = 250 * time.Millisecond
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Pin {
		if err := pinSelf(); err != nil {
			return nil, err
		}
	}
	out := map[string]DataplaneResult{}
	for _, name := range o.Planes {
		if !slices.Contains(DataPlanes, name) {
			return nil, fmt.Errorf("unknown data plane %q (known: %v)", name, DataPlanes)
		}
		res, err := runPlane(ctx, o, name)
		if errors.Is(err, ErrPlaneUnavailable) {
			fmt.Fprintf(o.Progress, "%s: skipped: %v\n", name, err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(o.Progress, "%s: shift p50 %.3f ms p99 %.3f ms, unshift p50 %.3f ms p99 %.3f ms (%d shifts, %d requests, %d failed)\n",
			name, res.ShiftP50ms, res.ShiftP99ms, res.UnshiftP50ms, res.UnshiftP99ms, res.Shifts, res.Requests, res.Failed)
		out[name] = res
	}
	return out, nil
}

// The bench's topology: three zones, two targets each; az-a is shifted.
var (
	benchZones = []string{"az-a", "az-b", "az-c"}
	benchZone  = "az-a"
)

func runPlane(ctx context.Context, o DataplaneOptions, name string) (DataplaneResult, error) {
	arr := newArrivals()
	var p plane
	var err error
	switch name {
	case PlaneEmbedded:
		p, err = embeddedPlane(ctx, arr)
	case PlaneEmbeddedProcess:
		p, err = processPlane(ctx, arr, o.Exe, o.Pin)
	case PlaneHAProxy, PlaneHAProxyEpoch:
		p, err = haproxyPlane(ctx, arr, o.Pin, name == PlaneHAProxyEpoch)
	case PlaneXDS:
		p, err = xdsPlane(ctx, arr)
	}
	if err != nil {
		return DataplaneResult{}, err
	}
	defer p.close()

	// Customers: Concurrency loops sending back to back.
	var sent, failed atomic.Int64
	lctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lctx.Err() == nil {
				sent.Add(1)
				if err := p.send(lctx, arr.now()); err != nil && lctx.Err() == nil {
					failed.Add(1)
				}
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()
	// Every zone must be reached before measuring.
	if err := waitFor(ctx, 30*time.Second, func() bool {
		arr.reset()
		time.Sleep(50 * time.Millisecond)
		for _, z := range benchZones {
			if _, _, ok := arr.get(z); !ok {
				return false
			}
		}
		return true
	}); err != nil {
		return DataplaneResult{}, fmt.Errorf("traffic does not reach every zone: %w", err)
	}
	// Requests before every zone was reached (a front door process waiting
	// for its first state) are not the data plane's failures.
	sent.Store(0)
	failed.Store(0)
	var shifts, unshifts []float64
	for i := 0; i < o.Shifts && ctx.Err() == nil; i++ {
		dec := arr.reset()
		if err := p.shift(ctx, true); err != nil {
			return DataplaneResult{}, err
		}
		// Done when the zone got no new request for Quiet.
		if err := waitFor(ctx, 10*time.Second, func() bool {
			_, last, _ := arr.get(benchZone)
			return arr.now()-max(last, dec) >= o.Quiet
		}); err != nil {
			return DataplaneResult{}, fmt.Errorf("shift %d: the zone still gets new requests: %w", i, err)
		}
		_, last, ok := arr.get(benchZone)
		d := time.Duration(0)
		if ok {
			d = last - dec
		}
		shifts = append(shifts, float64(d)/1e6)
		dec = arr.reset()
		if err := p.shift(ctx, false); err != nil {
			return DataplaneResult{}, err
		}
		if err := waitFor(ctx, 10*time.Second, func() bool { _, _, ok := arr.get(benchZone); return ok }); err != nil {
			return DataplaneResult{}, fmt.Errorf("unshift %d: the zone gets no requests again: %w", i, err)
		}
		first, _, _ := arr.get(benchZone)
		unshifts = append(unshifts, float64(first-dec)/1e6)
	}
	slices.Sort(shifts)
	slices.Sort(unshifts)
	return DataplaneResult{
		ShiftP50ms: round3(percentile(shifts, 0.5)), ShiftP99ms: round3(percentile(shifts, 0.99)),
		UnshiftP50ms: round3(percentile(unshifts, 0.5)), UnshiftP99ms: round3(percentile(unshifts, 0.99)),
		Shifts: len(shifts), Requests: sent.Load(), Failed: failed.Load(),
	}, ctx.Err()
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// waitFor polls cond every millisecond: the data planes are other
// processes or goroutines with no event to wait on.
func waitFor(ctx context.Context, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", limit)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// httpTargets starts two HTTP backends per zone recording arrivals.
func httpTargets(arr *arrivals) (targets []xds.Target, closeAll func(), err error) {
	var srvs []*http.Server
	closeAll = func() {
		for _, s := range srvs {
			s.Close()
		}
	}
	for _, z := range benchZones {
		for i := 1; i <= 2; i++ {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			z := z
			s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if v := r.Header.Get(sentHeader); v != "" {
					if ns, err := strconv.ParseInt(v, 10, 64); err == nil {
						arr.record(z, time.Duration(ns))
					}
				}
				io.WriteString(w, "ok")
			})}
			go s.Serve(ln)
			srvs = append(srvs, s)
			targets = append(targets, xds.Target{ID: fmt.Sprintf("%s-%d", z, i), Zone: z, Addr: ln.Addr().String()})
		}
	}
	return targets, closeAll, nil
}

// httpSender sends GETs with the sent time to url.
func httpSender(url string) func(ctx context.Context, sent time.Duration) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 5 * time.Second}
	return func(ctx context.Context, sent time.Duration) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header.Set(sentHeader, strconv.FormatInt(int64(sent), 10))
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
}

func embeddedPlane(ctx context.Context, arr *arrivals) (plane, error) {
	targets, closeTargets, err := httpTargets(arr)
	if err != nil {
		return plane{}, err
	}
	table := frontdoor.NewTable(benchZones, frontdoor.DefaultHealthPolicy)
	for _, t := range targets {
		if err := table.AddTarget(frontdoor.Target{ID: t.ID, Zone: t.Zone, Addr: t.Addr}); err != nil {
			closeTargets()
			return plane{}, err
		}
	}
	proxy, err := frontdoor.StartProxy(ctx, table, frontdoor.ProxyOptions{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		closeTargets()
		return plane{}, err
	}
	return plane{
		send:  httpSender(proxy.RegionalURL() + "/bench"),
		shift: func(_ context.Context, away bool) error { return table.SetShifted(benchZone, away) },
		close: func() { proxy.Close(); closeTargets() },
	}, nil
}

// startXDS serves targets as the resource "bench" over benchZones, with
// tlsConf (nil: plaintext, as proxyless gRPC's bootstrap here expects).
func startXDS(ctx context.Context, targets []xds.Target, tlsConf *tls.Config) (*xds.Server, func(), error) {
	srv, err := xds.New(xds.Options{Listen: "127.0.0.1:0", Log: slog.New(slog.DiscardHandler),
		Resources: []xds.Resource{{Name: "bench", Zones: benchZones, Targets: targets}}, TLS: tlsConf})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	return srv, func() { cancel(); <-done }, nil
}

// processPlane is `grayzone frontdoor` (startFrontDoorProcess), on pinCPU
// under Pin.
func processPlane(ctx context.Context, arr *arrivals, exe string, pin bool) (plane, error) {
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return plane{}, err
		}
	}
	targets, closeTargets, err := httpTargets(arr)
	if err != nil {
		return plane{}, err
	}
	dir, err := os.MkdirTemp("", "gzbench-fd")
	if err != nil {
		closeTargets()
		return plane{}, err
	}
	cpu := -1
	if pin {
		cpu = pinCPU
	}
	fd, err := startFrontDoorProcess(ctx, exe, dir, cpu, nil, targets)
	if err != nil {
		closeTargets()
		os.RemoveAll(dir)
		return plane{}, err
	}
	return plane{
		send: httpSender("http://" + fd.Regional + "/bench"),
		shift: func(ctx context.Context, away bool) error {
			return fd.XDS.Shift(ctx, "bench", benchZone, away, time.Time{})
		},
		close: func() { fd.close(); closeTargets(); os.RemoveAll(dir) },
	}, nil
}

// haproxyPlane drives a real HAProxy; with epoch, as a replica that leads
// does: its configuration declares the epoch record and each order carries
// an epoch, so a shift's order reads the record first (one more round trip
// on its connection).
func haproxyPlane(ctx context.Context, arr *arrivals, pin, epoch bool) (plane, error) {
	if _, err := haproxy.Binary(); err != nil {
		return plane{}, fmt.Errorf("%w: %v", ErrPlaneUnavailable, err)
	}
	targets, closeTargets, err := httpTargets(arr)
	if err != nil {
		return plane{}, err
	}
	dir, err := os.MkdirTemp("", "gzbench-hap")
	if err != nil {
		closeTargets()
		return plane{}, err
	}
	l := haproxy.Layout{Socket: filepath.Join(dir, "admin.sock"), Zonal: map[string]string{}}
	if pin {
		cpu := pinCPU
		l.PinCPU = &cpu
	}
	if l.Regional, err = freeport.Loopback(); err != nil {
		return plane{}, err
	}
	for _, z := range benchZones {
		if l.Zonal[z], err = freeport.Loopback(); err != nil {
			return plane{}, err
		}
	}
	for _, t := range targets {
		l.Targets = append(l.Targets, haproxy.Target{ID: t.ID, Zone: t.Zone, Addr: t.Addr})
	}
	if epoch {
		l.EpochMap = filepath.Join(dir, haproxy.EpochMapFile)
		if err := os.WriteFile(l.EpochMap, nil, 0o600); err != nil {
			closeTargets()
			os.RemoveAll(dir)
			return plane{}, err
		}
	}
	proc, err := haproxy.Start(ctx, dir, l.Config(), l.Socket)
	if err != nil {
		closeTargets()
		os.RemoveAll(dir)
		return plane{}, err
	}
	act, err := haproxy.New(haproxy.Options{Runtime: proc.Runtime, Zones: l.Zones(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		proc.Stop()
		closeTargets()
		return plane{}, err
	}
	return plane{
		send: httpSender("http://" + l.Regional + "/bench"),
		shift: func(ctx context.Context, away bool) error {
			if epoch {
				ctx = actuator.WithFence(ctx, 1)
			}
			return act.SetShifted(ctx, benchZone, away)
		},
		close: func() { proc.Stop(); closeTargets(); os.RemoveAll(dir) },
	}, nil
}

func xdsPlane(ctx context.Context, arr *arrivals) (plane, error) {
	var targets []xds.Target
	var servers []*grpc.Server
	stopAll := func() {
		for _, s := range servers {
			s.Stop()
		}
	}
	for _, z := range benchZones {
		for i := 1; i <= 2; i++ {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				stopAll()
				return plane{}, err
			}
			z := z
			gs := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				if md, ok := metadata.FromIncomingContext(ctx); ok {
					if v := md.Get("x-sent"); len(v) == 1 {
						if ns, err := strconv.ParseInt(v[0], 10, 64); err == nil {
							arr.record(z, time.Duration(ns))
						}
					}
				}
				return h(ctx, req)
			}))
			healthpb.RegisterHealthServer(gs, health.NewServer())
			go gs.Serve(ln)
			servers = append(servers, gs)
			targets = append(targets, xds.Target{ID: fmt.Sprintf("%s-%d", z, i), Zone: z, Addr: ln.Addr().String()})
		}
	}
	srv, stopXDS, err := startXDS(ctx, targets, nil)
	if err != nil {
		stopAll()
		return plane{}, err
	}
	bootstrap := fmt.Sprintf(`{"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}], "node": {"id": "bench-client"}}`, srv.Addr())
	rb, err := xdsgrpc.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		stopXDS()
		stopAll()
		return plane{}, err
	}
	conn, err := grpc.NewClient("xds:///bench", grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(rb))
	if err != nil {
		stopXDS()
		stopAll()
		return plane{}, err
	}
	client := healthpb.NewHealthClient(conn)
	return plane{
		send: func(ctx context.Context, sent time.Duration) error {
			ctx = metadata.AppendToOutgoingContext(ctx, "x-sent", strconv.FormatInt(int64(sent), 10))
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
			return err
		},
		shift: func(ctx context.Context, away bool) error {
			return srv.Shift(ctx, "bench", benchZone, away, time.Time{})
		},
		close: func() { conn.Close(); stopXDS(); stopAll() },
	}, nil
}
