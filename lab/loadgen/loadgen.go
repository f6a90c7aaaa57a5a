// Package loadgen is the lab's customer load: an open-loop generator that
// sends requests to the regional endpoint at a scheduled rate whether or not
// earlier requests have been answered, as independent customers would.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/lab/workload"
)

// DefaultTimeout is how long a customer waits for an answer: the scenario
// format counts a request without an answer within 5 s as failed.
const DefaultTimeout = 5 * time.Second

// maxBody bounds how much of a response is read (and thrown away).
const maxBody = 1 << 20

// Result is one customer request.
type Result struct {
	Start     time.Time // when it was sent
	Operation string
	Status    int   // 0: no response
	Err       error // transport error, timeout, or broken body; nil otherwise
	Latency   time.Duration
	// Zone and Instance come from the response headers; empty without a
	// response or when the answering server does not set them.
	Zone, Instance string
}

// Failed reports whether the customer saw a failure: a 5xx, a broken
// connection, or no answer within the timeout.
func (r Result) Failed() bool { return r.Err != nil || r.Status == 0 || r.Status >= 500 }

// Config describes one load run.
type Config struct {
	// Target is the base URL of the regional endpoint; operation o is
	// requested as GET Target/o.
	Target string
	// Rate is the request rate (per second) at an offset from the start; it
	// is read at each request's due time, so steps take effect at once
	// (scenario.Load.RPSAt fits). A rate <= 0 pauses the load.
	Rate func(elapsed time.Duration) float64
	// Mix is the share of each operation; shares are normalised to their sum.
	Mix  []scenario.OperationShare
	Seed int64
	// Timeout bounds each request; 0 means DefaultTimeout.
	Timeout time.Duration
	// OnResult receives every result, from many goroutines at once, and
	// never after Run has returned. Nil: results are dropped.
	OnResult func(Result)
	// Duration is how long requests are started for; required.
	Duration time.Duration
}

// ConstantRate is a Rate that never changes.
func ConstantRate(rps float64) func(time.Duration) float64 {
	return func(time.Duration) float64 { return rps }
}

// Run sends requests until Duration has elapsed or ctx is done, then waits
// for the requests in flight (each bounded by Timeout). It returns nil when
// the whole Duration ran and ctx.Err() when ctx ended it early. In-flight
// requests are not cancelled by ctx: a customer who already asked waits for
// the answer.
func Run(ctx context.Context, cfg Config) error {
	p, err := prepare(cfg)
	if err != nil {
		return err
	}
	tr := &http.Transport{
		Proxy:               nil, // the lab is on loopback; never use an environment proxy
		DialContext:         (&net.Dialer{Timeout: p.timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024, // the default 2 would churn connections at any real rate
		IdleConnTimeout:     90 * time.Second,
	}
	client := &http.Client{
		Transport: tr,
		// A redirect is an answer; following it would hide what the endpoint did.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer tr.CloseIdleConnections()

	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15))
	sched := newSchedule(cfg.Rate, cfg.Duration)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	var inflight sync.WaitGroup
	start := time.Now()
	var stopped error
	for stopped == nil {
		off, ok := sched.next()
		if !ok {
			break
		}
		if wait := time.Until(start.Add(off)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				stopped = ctx.Err()
				continue
			case <-timer.C:
			}
		} else if err := ctx.Err(); err != nil {
			// Behind schedule we send without waiting, so check ctx here too.
			stopped = err
			continue
		}
		op := p.pick(rng.Float64())
		inflight.Go(func() { p.send(ctx, client, op) })
	}
	inflight.Wait()
	return stopped
}

// plan is a validated Config, ready to run.
type plan struct {
	urls     map[string]string // operation -> URL
	ops      []string
	cum      []float64 // cumulative normalised shares, last is 1
	timeout  time.Duration
	onResult func(Result)
}

func prepare(cfg Config) (*plan, error) {
	base, err := url.Parse(cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("loadgen: Target %q: %w", cfg.Target, err)
	}
	if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("loadgen: Target %q: want an absolute http(s) URL", cfg.Target)
	}
	if cfg.Rate == nil {
		return nil, errors.New("loadgen: Rate is required")
	}
	if cfg.Duration <= 0 {
		return nil, fmt.Errorf("loadgen: Duration %v: must be > 0", cfg.Duration)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("loadgen: Timeout %v: must be >= 0 (0 means %v)", cfg.Timeout, DefaultTimeout)
	}
	if len(cfg.Mix) == 0 {
		return nil, errors.New("loadgen: Mix is empty: name at least one operation")
	}
	p := &plan{urls: map[string]string{}, timeout: cfg.Timeout, onResult: cfg.OnResult}
	if p.timeout == 0 {
		p.timeout = DefaultTimeout
	}
	var total float64
	for i, s := range cfg.Mix {
		switch {
		case s.Operation == "":
			return nil, fmt.Errorf("loadgen: Mix[%d]: operation name is empty", i)
		case math.IsNaN(s.Share) || math.IsInf(s.Share, 0) || s.Share < 0:
			return nil, fmt.Errorf("loadgen: Mix[%d] (%s): share %v must be a finite number >= 0", i, s.Operation, s.Share)
		}
		if _, dup := p.urls[s.Operation]; dup {
			return nil, fmt.Errorf("loadgen: Mix[%d]: operation %s listed twice", i, s.Operation)
		}
		p.urls[s.Operation] = base.JoinPath(s.Operation).String()
		total += s.Share
	}
	if total <= 0 {
		return nil, errors.New("loadgen: Mix shares sum to 0")
	}
	var acc float64
	for _, s := range cfg.Mix {
		if s.Share == 0 {
			continue
		}
		acc += s.Share / total
		p.ops = append(p.ops, s.Operation)
		p.cum = append(p.cum, acc)
	}
	p.cum[len(p.cum)-1] = 1 // rounding must not leave a gap at the top
	return p, nil
}

// pick maps a uniform draw in [0,1) to an operation.
func (p *plan) pick(u float64) string {
	for i, c := range p.cum {
		if u < c {
			return p.ops[i]
		}
	}
	return p.ops[len(p.ops)-1]
}

func (p *plan) send(ctx context.Context, client *http.Client, op string) {
	// Start is taken before the deadline is set, so a timed-out request
	// never reports less latency than the timeout.
	res := Result{Start: time.Now(), Operation: op}
	// The request outlives ctx (see Run) but keeps its values.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, p.urls[op], nil)
	if err != nil {
		res.Err = fmt.Errorf("loadgen: %s: %w", op, err)
		p.report(res)
		return
	}
	req.Header.Set("User-Agent", "grayzone-loadgen")
	resp, err := client.Do(req)
	if err != nil {
		res.Latency = time.Since(res.Start)
		res.Err = fmt.Errorf("loadgen: %s: %w", op, err)
		p.report(res)
		return
	}
	res.Status = resp.StatusCode
	res.Zone = resp.Header.Get(workload.HeaderZone)
	res.Instance = resp.Header.Get(workload.HeaderInstance)
	// The customer has an answer only once the body is in; reading it all also
	// lets the connection be reused.
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	res.Latency = time.Since(res.Start)
	if err != nil {
		res.Err = fmt.Errorf("loadgen: %s: reading body: %w", op, err)
	}
	p.report(res)
}

func (p *plan) report(r Result) {
	if p.onResult != nil {
		p.onResult(r)
	}
}
