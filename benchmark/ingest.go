package benchmark

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/listener"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/otlp"
	"github.com/grayzone/grayzone/telemetry/record"
)

// IngestOptions configure RunIngest.
type IngestOptions struct {
	Instances, Operations int           // the fleet (default 10,000 × 50)
	Duration              time.Duration // sending time per source (default 10s)
	Sources               []string      // otlp, batch (default both)
	// DrainPerTick is the engine's budget per 250 ms tick (default serve's,
	// ingest.DefaultDrainPerTick); lower it to overload the engine on purpose.
	DrainPerTick int
	MaxPending   int // the gate's buffer (default serve's 1,000,000)
	// Sender, when set, is the command line of a separate sender process
	// (grayzone bench ingest-sender; RunSender is its body), to which the
	// sender's flags are added. The process measured is then the receiving
	// side alone, as in production, where the senders are other machines;
	// the sender's CPU is reported apart. Empty: the senders are goroutines
	// of this process, and their CPU counts in its per-CPU-second rate.
	Sender   []string
	Progress io.Writer
}

// IngestResult is one source's numbers.
type IngestResult struct {
	Source      string  `json:"source"`
	ObsPerS     float64 `json:"obs_per_s"`          // records admitted by the gate per second (OTLP data points or batch aggregates)
	ObsPerSCore float64 `json:"obs_per_s_per_core"` // ObsPerS / GOMAXPROCS
	// ObsPerCPUS is records admitted per CPU-second the process used:
	// receiver, gate and engine, and the senders too when they run in it
	// (SendersApart false). The per-core rate that does not depend on what
	// else the machine runs.
	ObsPerCPUS   float64 `json:"obs_per_cpu_s"`
	CPUSeconds   float64 `json:"cpu_s"`
	SendersApart bool    `json:"senders_apart"` // the senders ran in a process of their own
	SenderCPUS   float64 `json:"sender_cpu_s"`  // that process's CPU, not in CPUSeconds
	RSSMiB       float64 `json:"rss_mib"`       // the process's peak resident memory during the run
	Cores        int     `json:"cores"`
	Sent         int64   `json:"sent"`            // records sent
	Dropped      uint64  `json:"dropped"`         // dropped by the gate, buffer full
	EnginePerS   float64 `json:"engine_per_s"`    // aggregates the engine consumed per second
	MaxTickMs    float64 `json:"max_tick_ms"`     // the slowest engine tick (drain + assess)
	PendingMax   int     `json:"pending_max"`     // the gate's deepest queue
	Overload     float64 `json:"overload_factor"` // offered / what the engine consumed
	Seconds      float64 `json:"seconds"`
	Instances    int     `json:"instances"`
	Operations   int     `json:"operations"`
	MaxPending   int     `json:"max_pending"`
	DrainPerTick int     `json:"drain_per_tick"`
}

// Engine tick and buffer, as in grayzone serve.
const (
	ingestTick     = 250 * time.Millisecond
	ingestPending  = 1_000_000
	ingestPerBatch = 5000 // records per OTLP request / batch call
	benchToken     = "bench-token-0123456789"
)

var ingestZones = []string{"z1", "z2", "z3"}

// RunIngest measures each source: senders on loopback push a 10,000 ×
// 50 fleet's per-interval records as fast as they can, through the real
// receiver (OTLP/HTTP protobuf) or the real batch API handler, into an
// ingest gate that a real detection engine drains every 250 ms with serve's
// budget. Offered load far above what the engine takes is the overload
// case: the excess must be dropped and counted, memory must stay bounded,
// and no tick may stall.
func RunIngest(ctx context.Context, o IngestOptions) ([]IngestResult, error) {
	if o.Instances <= 0 {
		o.Instances = 10_000
	}
	if o.Operations <= 0 {
		o.Operations = 50
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.DrainPerTick <= 0 {
		o.DrainPerTick = ingest.DefaultDrainPerTick
	}
	if o.MaxPending <= 0 {
		o.MaxPending = ingestPending
	}
	if len(o.Sources) == 0 {
		o.Sources = []string{"otlp", "batch"}
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	var out []IngestResult
	for _, src := range o.Sources {
		var res IngestResult
		var err error
		switch src {
		case "otlp":
			res, err = ingestOTLP(ctx, o)
		case "batch":
			res, err = ingestBatch(ctx, o)
		default:
			return nil, fmt.Errorf("bench ingest: unknown source %q (want otlp or batch)", src)
		}
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Progress, "%s: %.0f records/s (%.0f per CPU-second), peak RSS %.0f MiB, dropped %d, slowest tick %.0f ms\n",
			src, res.ObsPerS, res.ObsPerCPUS, res.RSSMiB, res.Dropped, res.MaxTickMs)
		out = append(out, res)
		runtime.GC()
	}
	return out, nil
}

func instanceZone(i int) string { return ingestZones[i%len(ingestZones)] }

// runIngest drives one source: the senders push to url until the duration
// is up, while the engine loop drains the gate.
func runIngest(ctx context.Context, o IngestOptions, name, url string, gate *ingest.Gate) (IngestResult, error) {
	res := IngestResult{Source: name, Cores: runtime.GOMAXPROCS(0), Instances: o.Instances, Operations: o.Operations,
		MaxPending: o.MaxPending, DrainPerTick: o.DrainPerTick, SendersApart: len(o.Sender) > 0}
	eng, err := detect.New(detect.Config{Zones: ingestZones})
	if err != nil {
		return res, err
	}
	so := SenderOptions{URL: url, Source: name, Duration: o.Duration, Instances: o.Instances, Operations: o.Operations}
	var snd *sender
	if !res.SendersApart {
		if snd, err = newSender(so); err != nil {
			return res, err
		}
	}
	stop := make(chan struct{})
	var consumed atomic.Int64
	var maxTick time.Duration
	var wg sync.WaitGroup
	peak := newPeakRSS()
	wg.Add(1)
	go func() { // the engine's loop, as serve runs it
		defer wg.Done()
		t := time.NewTicker(ingestTick)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				start := time.Now()
				res.PendingMax = max(res.PendingMax, gate.Pending())
				gate.Drain(now, o.DrainPerTick, func(b []record.Aggregate) {
					for i := range b {
						eng.ObserveAggregate(b[i])
					}
					consumed.Add(int64(len(b)))
				})
				eng.Tick(now)
				maxTick = max(maxTick, time.Since(start))
				peak.sample()
			}
		}
	}()
	var start time.Time
	var cpu0 float64
	begin := func() { start, cpu0 = time.Now(), cpuTime() }
	if res.SendersApart {
		res.Sent, res.SenderCPUS, err = runSenderProcess(ctx, o.Sender, so, begin)
	} else {
		begin()
		res.Sent, err = snd.run(ctx)
	}
	secs := time.Since(start).Seconds()
	res.CPUSeconds = cpuTime() - cpu0
	close(stop)
	wg.Wait()
	peak.sample()
	if err != nil {
		return res, err
	}
	var accepted uint64
	for _, st := range gate.Stats() {
		accepted += st.Accepted
		res.Dropped += st.Dropped
		for reason, n := range st.Rejected {
			if n > 0 {
				return res, fmt.Errorf("bench ingest: %s: %d batches rejected (%s): %s", name, n, reason, st.LastReject)
			}
		}
	}
	res.Seconds = secs
	res.ObsPerS = float64(accepted) / secs
	res.ObsPerSCore = res.ObsPerS / float64(res.Cores)
	if res.CPUSeconds > 0 {
		res.ObsPerCPUS = float64(accepted) / res.CPUSeconds
	}
	res.EnginePerS = float64(consumed.Load()) / secs
	res.MaxTickMs = float64(maxTick) / float64(time.Millisecond)
	res.RSSMiB = peak.mib()
	if res.EnginePerS > 0 {
		res.Overload = float64(res.Sent) / secs / res.EnginePerS
	}
	return res, nil
}

// ingestOTLP measures the OTLP/HTTP receiver.
func ingestOTLP(ctx context.Context, o IngestOptions) (IngestResult, error) {
	gate := ingest.New("bench", ingestZones, ingest.Limits{MaxInstances: o.Instances, MaxOperations: o.Operations, MaxPending: o.MaxPending})
	r, err := otlp.New(otlp.Config{HTTP: "127.0.0.1:0", Sink: gate, Log: slog.New(slog.DiscardHandler),
		Security: listener.Security{Insecure: true}}) // loopback, measuring conversion and the gate
	if err != nil {
		return IngestResult{}, err
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	defer func() { stop(); <-done }()
	return runIngest(ctx, o, "otlp", "http://"+r.HTTPAddr()+"/v1/metrics", gate)
}

// gateBackend is the batch API's backend for the benchmark: ingestion
// only, into the gate, as the service does it.
type gateBackend struct {
	api.Backend
	gate *ingest.Gate
}

func (g gateBackend) IngestAggregates(ctx context.Context, resource, source string, obs []observation.Observation, aggs []record.Aggregate) error {
	return g.gate.Offer(source, aggs, time.Now())
}

// ingestBatch measures the batch API's handler, aggregated form.
func ingestBatch(ctx context.Context, o IngestOptions) (IngestResult, error) {
	gate := ingest.New("bench", ingestZones, ingest.Limits{MaxInstances: o.Instances, MaxOperations: o.Operations, MaxPending: o.MaxPending})
	srv := httptest.NewServer(api.NewHandler(gateBackend{gate: gate}, api.Options{Tokens: func() []config.Token { return []config.Token{{Name: "bench", Secret: benchToken}} }}))
	defer srv.Close()
	return runIngest(ctx, o, "batch", srv.URL+"/v1/observations", gate)
}

// SenderOptions configure RunSender.
type SenderOptions struct {
	URL                   string
	Source                string // otlp or batch: the body's format
	Duration              time.Duration
	Instances, Operations int
}

// sender pushes a fleet's records, pre-encoded, to a receiver.
type sender struct {
	o      SenderOptions
	bodies [][]byte
	counts []int // records in each body
	client *http.Client
}

// newSender encodes the fleet's bodies: one delta histogram point (OTLP) or
// one aggregate (batch) per instance and operation, 5,000 to a request.
func newSender(o SenderOptions) (*sender, error) {
	s := &sender{o: o, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	perReq := max(1, ingestPerBatch/o.Operations) // instances per request
	now := time.Now()
	for first := 0; first < o.Instances; first += perReq {
		last := min(first+perReq, o.Instances)
		var body []byte
		switch o.Source {
		case "otlp":
			md := pmetric.NewMetrics()
			for i := first; i < last; i++ {
				rm := md.ResourceMetrics().AppendEmpty()
				rm.Resource().Attributes().PutStr("cloud.availability_zone", instanceZone(i))
				rm.Resource().Attributes().PutStr("service.instance.id", "i-"+strconv.Itoa(i))
				m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
				m.SetName(otlp.DefaultDurationMetric)
				m.SetUnit("s")
				h := m.SetEmptyHistogram()
				h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
				for op := range o.Operations {
					dp := h.DataPoints().AppendEmpty()
					dp.Attributes().PutStr("http.route", "/op/"+strconv.Itoa(op))
					dp.Attributes().PutInt("http.response.status_code", 200)
					dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
					dp.ExplicitBounds().FromRaw([]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1})
					dp.BucketCounts().FromRaw([]uint64{3, 10, 5, 1, 1, 0, 0, 0, 0})
					dp.SetCount(20)
				}
			}
			var err error
			if body, err = pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto(); err != nil {
				return nil, err
			}
		case "batch":
			at := now.UTC().Format(time.RFC3339)
			var b strings.Builder
			b.WriteString(`{"resource":"bench","aggregates":[`)
			for i := first; i < last; i++ {
				for op := range o.Operations {
					if i != first || op != 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, `{"at":%q,"source":"server","zone":%q,"instance":"i-%d","operation":"op-%d","requests":20,"slow":0,"latency_ms":[[4,13],[20,6],[80,1]]}`,
						at, instanceZone(i), i, op)
				}
			}
			b.WriteString("]}")
			body = []byte(b.String())
		default:
			return nil, fmt.Errorf("bench ingest: unknown source %q (want otlp or batch)", o.Source)
		}
		s.bodies = append(s.bodies, body)
		s.counts = append(s.counts, (last-first)*o.Operations)
	}
	return s, nil
}

// run sends from as many workers as there are CPUs, each waiting for its
// answer before the next request, until the duration is up; it returns the
// records sent. A request started before the end is finished, not cut
// short, so every record sent was also received.
func (s *sender) run(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deadline := time.Now().Add(s.o.Duration)
	var sent atomic.Int64
	var sendErr atomic.Value
	var wg sync.WaitGroup
	workers := max(2, runtime.GOMAXPROCS(0))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil && time.Now().Before(deadline); i += workers {
				n, err := s.send(ctx, i%len(s.bodies))
				if err != nil {
					if ctx.Err() == nil {
						sendErr.Store(err)
						cancel()
					}
					return
				}
				sent.Add(int64(n))
			}
		}()
	}
	wg.Wait()
	if err, ok := sendErr.Load().(error); ok {
		return sent.Load(), err
	}
	return sent.Load(), ctx.Err()
}

// send posts body i; a full buffer's 503 counts as sent (the gate counts
// those records as dropped).
func (s *sender) send(ctx context.Context, i int) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.o.URL, bytes.NewReader(s.bodies[i]))
	ok := http.StatusOK
	if s.o.Source == "otlp" {
		req.Header.Set("Content-Type", "application/x-protobuf")
	} else {
		req.Header.Set("Authorization", "Bearer "+benchToken)
		ok = http.StatusAccepted
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("bench ingest: %s: %w", s.o.Source, err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != ok && resp.StatusCode != http.StatusServiceUnavailable {
		return 0, fmt.Errorf("bench ingest: %s: HTTP %d: %s", s.o.Source, resp.StatusCode, msg)
	}
	return s.counts[i], nil
}

// senderReady is the line a sender process prints once its bodies are
// encoded and it starts sending; the result line follows when it is done.
const senderReady = "sending"

// RunSender is the sender process's body (grayzone bench ingest-sender):
// it encodes the bodies, prints senderReady, sends for the duration, and
// prints {"sent": N}.
func RunSender(ctx context.Context, o SenderOptions, stdout io.Writer) error {
	s, err := newSender(o)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, senderReady)
	sent, err := s.run(ctx)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(map[string]int64{"sent": sent})
}

// runSenderProcess runs the sender command and calls begin when it starts
// sending; it returns the records sent and the process's CPU seconds.
func runSenderProcess(ctx context.Context, argv []string, o SenderOptions, begin func()) (int64, float64, error) {
	args := append(slices.Clone(argv[1:]), "--url", o.URL, "--source", o.Source, "--duration", o.Duration.String(),
		"--instances", strconv.Itoa(o.Instances), "--operations", strconv.Itoa(o.Operations))
	cmd := exec.CommandContext(ctx, argv[0], args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("bench ingest: sender: %w", err)
	}
	sc := bufio.NewScanner(out)
	var result struct {
		Sent int64 `json:"sent"`
	}
	for sc.Scan() {
		if sc.Text() == senderReady {
			begin()
			continue
		}
		_ = json.Unmarshal(sc.Bytes(), &result)
	}
	if err := cmd.Wait(); err != nil {
		return 0, 0, fmt.Errorf("bench ingest: sender: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var cpu float64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	return result.Sent, cpu, nil
}

// cpuTime is the process's user and system CPU time, in seconds.
func cpuTime() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// peakRSS samples the process's resident memory (VmRSS) and keeps the peak.
type peakRSS struct {
	mu  sync.Mutex
	max int64 // KiB
}

func newPeakRSS() *peakRSS { p := &peakRSS{}; p.sample(); return p }

func (p *peakRSS) sample() {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			p.mu.Lock()
			p.max = max(p.max, kb)
			p.mu.Unlock()
		}
	}
}

func (p *peakRSS) mib() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return float64(p.max) / 1024
}
