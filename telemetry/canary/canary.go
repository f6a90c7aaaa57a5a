// Package canary is the lab's synthetic callers, like the workshop's
// CloudWatch Synthetics canaries: on a fixed interval each endpoint (every
// zone's own endpoint and the regional one) is called once per operation,
// and every call becomes an observation. Zonal canaries keep observing a zone
// after it has been shifted away, which is what lets recovery be seen.
package canary

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/internal/warm"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/operation"
)

// DefaultTimeout is how long a canary waits for an answer, the same 5 s after
// which a customer request counts as failed.
const DefaultTimeout = 5 * time.Second

// maxBody bounds how much of a response is read (and thrown away).
const maxBody = 1 << 20

// Endpoint is one thing the canaries call.
type Endpoint struct {
	// Zone is the zone the endpoint serves; empty for the regional endpoint,
	// whose observations take their zone from the answering instance.
	Zone string
	URL  string // base URL; operation o is requested as GET URL/o
}

// Config describes the canaries.
type Config struct {
	Interval  time.Duration // required, > 0
	Endpoints []Endpoint    // required
	// Operations to call on every endpoint; empty means operation.Names().
	Operations []string
	// Timeout bounds each call; 0 means DefaultTimeout.
	Timeout time.Duration
	// Record receives every observation, from many goroutines at once, and
	// never after Run has returned. Required.
	Record func(observation.Observation)
	// Shifted, when set, reports whether traffic is shifted away from a zone.
	// A shifted zone's canaries are grayzone's only view of it, and its
	// recovery test needs samples, so its zonal endpoint is then called every
	// ProbeInterval(Interval) instead of every Interval. Called once per
	// probe round, from Run's goroutine.
	Shifted func(zone string) bool
	// Clock paces the rounds and stamps observations; nil is the wall clock.
	// Latency is always wall time: the calls are real.
	Clock clock.Clock
	// Spread delays each call of a round by its own offset within Interval,
	// fixed per (endpoint, operation) by a hash, instead of firing the
	// whole round at once: a process running thousands of canaries then
	// calls at an even pace and needs one connection per endpoint, not one
	// per operation. Off, every call of a round starts together (the lab's
	// scenarios, whose rounds are compared at their ticks).
	Spread bool
	// Phase, when more than 0, delays the first round (and so every round)
	// by Phase: a process running many canaries gives each its own phase
	// within the round interval, so their rounds — each starting a goroutine
	// per call — do not all begin in the same instant.
	Phase time.Duration
	// Transport makes the calls; nil is the process's shared transport
	// (SharedTransport), whose connections every canary reuses.
	Transport http.RoundTripper
}

// probeSpeedup and minProbeInterval bound how much harder a shifted zone is
// probed: at most 5× the configured rate, never more than once a second per
// operation. At the recovery test's slowest (p_× ≈ 4 %, about 190 calls to
// show recovery at β = 1e-3, docs/detection.md) 5× turns the 8 minutes that 4
// operations every 10 s would need into under 2, for 4 calls a second.
const (
	probeSpeedup     = 5
	minProbeInterval = time.Second
)

// ProbeSteps is how many probe rounds make one full round of interval: the
// probe interval is interval/ProbeSteps(interval).
func ProbeSteps(interval time.Duration) int {
	return int(max(1, min(probeSpeedup, interval/minProbeInterval)))
}

// ProbeInterval is how often a shifted zone's canaries run (see Config.Shifted).
func ProbeInterval(interval time.Duration) time.Duration {
	return interval / time.Duration(ProbeSteps(interval))
}

// Per-host bounds of the shared transport. Spread calls to one endpoint come
// Interval/len(Operations) apart, so one idle connection is what a healthy
// endpoint needs; maxConnsPerHost bounds what a hanging one can hold (its
// calls then wait for a connection, and the wait counts in their latency,
// as it would for a customer).
const (
	maxIdleConnsPerHost = 2
	maxConnsPerHost     = 8
)

// SharedTransport is the one transport of every canary of the process
// without a Transport of its own: connections are pooled per endpoint
// across canaries and bounded per host, so the descriptors canaries hold
// grow with the endpoints, not with endpoints × operations. (serve's
// canaries of its own embedded front doors call them in memory instead,
// and the others through this one.)
var SharedTransport = sync.OnceValue(func() *http.Transport {
	return &http.Transport{
		Proxy:               nil, // loopback only; never an environment proxy
		DialContext:         (&net.Dialer{Timeout: DefaultTimeout}).DialContext,
		MaxIdleConnsPerHost: maxIdleConnsPerHost,
		MaxConnsPerHost:     maxConnsPerHost,
		IdleConnTimeout:     90 * time.Second,
	}
})

// Run calls every operation on every endpoint, in a round right away and
// then every Interval, until ctx is done; a round's calls start together, or
// each at its own offset with Spread. A round never waits for the previous one
// (a slow endpoint must not thin out its own observations); calls still in
// flight when ctx ends are abandoned unrecorded, since their outcome says
// more about the shutdown than about the endpoint. Run returns nil once ctx
// is done and everything it started has finished; it fails only for an
// invalid Config.
func Run(ctx context.Context, cfg Config) error {
	targets, err := prepare(&cfg)
	if err != nil {
		return err
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	tr := cfg.Transport
	if tr == nil {
		tr = SharedTransport()
	}
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c := &caller{client: client, clock: clk, timeout: cfg.Timeout, record: cfg.Record}

	var calls sync.WaitGroup
	defer calls.Wait()
	// The ticker exists before the first round, so a fake clock advanced once
	// the first round is seen cannot miss a tick.
	every, steps := cfg.Interval, 1
	if cfg.Shifted != nil {
		every, steps = ProbeInterval(cfg.Interval), ProbeSteps(cfg.Interval)
	}
	if cfg.Phase > 0 {
		select {
		case <-ctx.Done():
			return nil
		case <-clk.After(cfg.Phase):
		}
	}
	tick, stop := clk.NewTicker(every)
	defer stop()
	round := func(n int) {
		full := n%steps == 0
		shifted := map[string]bool{}
		for _, t := range targets {
			// A shifted zone is probed every `every`; the others once a full round.
			probed := false
			if steps > 1 && t.zone != "" {
				on, ok := shifted[t.zone]
				if !ok {
					on = cfg.Shifted(t.zone)
					shifted[t.zone] = on
				}
				probed = on
			}
			if !full && !probed {
				continue
			}
			off := t.offset
			if probed {
				off %= every // spread within the probe interval, not past the next probe round
			}
			calls.Add(1)
			call := func() { defer calls.Done(); c.call(ctx, t) }
			if off > 0 {
				// Registered here, not in the goroutine, so that a fake
				// clock advanced after the round cannot miss it.
				due := clk.After(off)
				go func() {
					select {
					case <-ctx.Done():
						calls.Done()
					case <-due:
						warm.Go(call) // a grown stack: net/http needs several KiB
					}
				}()
				continue
			}
			warm.Go(call)
		}
	}
	round(0)
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			round(n)
		}
	}
}

// target is one (endpoint, operation) pair.
type target struct {
	zone   string // "" for the regional endpoint
	op     string
	url    string
	offset time.Duration // after the round's start (Spread)
}

// spreadOffset is a call's fixed place in the interval: a hash of the
// endpoint and operation, so the calls of many canaries fall evenly over it
// and each keeps its own pace from round to round.
func spreadOffset(interval time.Duration, zone, url, op string) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(zone + "\x00" + url + "\x00" + op))
	return time.Duration(h.Sum64() % uint64(interval))
}

func prepare(cfg *Config) ([]target, error) {
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf("canary: Interval %v: must be > 0", cfg.Interval)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("canary: Timeout %v: must be >= 0 (0 means %v)", cfg.Timeout, DefaultTimeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Record == nil {
		return nil, errors.New("canary: Record is required")
	}
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("canary: Endpoints is empty")
	}
	if len(cfg.Operations) == 0 {
		cfg.Operations = operation.Names()
	}
	for i, op := range cfg.Operations {
		if op == "" {
			return nil, fmt.Errorf("canary: Operations[%d] is empty", i)
		}
	}
	var out []target
	for i, ep := range cfg.Endpoints {
		base, err := url.Parse(ep.URL)
		if err != nil {
			return nil, fmt.Errorf("canary: Endpoints[%d] (zone %q): URL: %w", i, ep.Zone, err)
		}
		if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
			return nil, fmt.Errorf("canary: Endpoints[%d] (zone %q): URL %q: want an absolute http(s) URL", i, ep.Zone, ep.URL)
		}
		for _, op := range cfg.Operations {
			t := target{zone: ep.Zone, op: op, url: base.JoinPath(op).String()}
			if cfg.Spread {
				t.offset = spreadOffset(cfg.Interval, t.zone, t.url, op)
			}
			out = append(out, t)
		}
	}
	return out, nil
}

type caller struct {
	client  *http.Client
	clock   clock.Clock
	timeout time.Duration
	record  func(observation.Observation)
}

// call makes one canary call and records it.
func (c *caller) call(ctx context.Context, t target) {
	// Timed before the deadline is set, so a timeout never reports less
	// latency than the timeout.
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	status, zone, instance := c.do(rctx, t.url)
	latency := time.Since(start)
	if status == 0 && ctx.Err() != nil {
		return // cut short by Run's own end, not by the endpoint
	}
	o := observation.Observation{
		At:        c.clock.Now(),
		Source:    observation.Canary,
		Zone:      t.zone,
		Instance:  instance,
		Operation: t.op,
		Outcome:   observation.FromStatus(status),
		Latency:   latency,
	}
	if t.zone == "" {
		o.Zone, o.Regional = zone, true
	}
	c.record(o)
}

// canaryHeader is every call's header, one map for all (a call made a
// map of its own).
var canaryHeader = http.Header{"User-Agent": {"grayzone-canary"}}

// do returns the status (0 without a complete answer: connection error,
// timeout, broken body) and the identity headers.
func (c *caller) do(ctx context.Context, u string) (status int, zone, instance string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", ""
	}
	req.Header = canaryHeader // read, never written, by the client and transports
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, "", ""
	}
	defer resp.Body.Close()
	zone, instance = resp.Header.Get(observation.HeaderZone), resp.Header.Get(observation.HeaderInstance)
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody)); err != nil {
		// A broken body is a broken connection: a fault, but we know who answered.
		return 0, zone, instance
	}
	return resp.StatusCode, zone, instance
}
