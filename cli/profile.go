package cli

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"sync"
	"time"
)

// startCPUProfile writes a CPU profile of the process to path (go tool
// pprof) until the returned stop is called; "" profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// startMemProfile writes a heap profile of the process to path when the
// returned stop is called (go tool pprof; "" profiles nothing): its
// alloc_space and alloc_objects say what allocated over the whole run (what
// sets the garbage collector's pace), inuse_space what was live at the end.
func startMemProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path) // fail now, not at the end of a long run
	if err != nil {
		return nil, fmt.Errorf("--memprofile: %w", err)
	}
	return func() {
		runtime.GC() // inuse_* as of the end, not of the last cycle
		err := pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "grayzone: write the heap profile: %v\n", err)
		}
	}, nil
}

// startContentionProfiles records where goroutines wait — on channels,
// selects and locks (the block profile: blockPath) and on contended mutexes
// (the mutex profile: mutexPath) — and writes them when the returned stop
// is called; "" records that one not. Where the CPU profile says what runs,
// these say what a slow call or pass waited for.
func startContentionProfiles(blockPath, mutexPath string) (stop func(), err error) {
	for flag, path := range map[string]string{"--blockprofile": blockPath, "--mutexprofile": mutexPath} {
		if path == "" {
			continue
		}
		f, err := os.Create(path) // fail now, not at the end of a long run
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		f.Close()
	}
	if blockPath != "" {
		runtime.SetBlockProfileRate(int(10 * time.Microsecond)) // a sample per 10µs blocked, on average
	}
	if mutexPath != "" {
		runtime.SetMutexProfileFraction(10)
	}
	write := func(name, path string) {
		if path == "" {
			return
		}
		f, err := os.Create(path)
		if err == nil {
			err = pprof.Lookup(name).WriteTo(f, 0)
			f.Close()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "grayzone: write %s profile: %v\n", name, err)
		}
	}
	return func() { write("block", blockPath); write("mutex", mutexPath) }, nil
}

// slowTracer keeps a flight recorder (runtime/trace) of the last seconds
// and writes its window to prefix.<what>.<n>.trace (go tool trace) when a
// pass of the tick loop or a GET /v1/status is slow: the trace of the slow
// one itself, with what every goroutine did meanwhile. At most one window a
// minute per kind, and slowTraces of each, so a long run writes a few.
type slowTracer struct {
	prefix string
	log    *slog.Logger
	fr     *trace.FlightRecorder
	wmu    sync.Mutex // one WriteTo at a time

	mu      sync.Mutex
	written map[string]int
	last    map[string]time.Time
}

// The slow thresholds: issue 24's bars (benchmark/fleet.go).
var slowLimits = map[string]time.Duration{"tick": 100 * time.Millisecond, "status": 200 * time.Millisecond}

const slowTraces = 4

// startSlowTracer starts the flight recorder; "" traces nothing (nil, and
// a nil slow hook).
func startSlowTracer(prefix string, log *slog.Logger) (*slowTracer, error) {
	if prefix == "" {
		return nil, nil
	}
	fr := trace.NewFlightRecorder(trace.FlightRecorderConfig{MinAge: 5 * time.Second, MaxBytes: 256 << 20})
	if err := fr.Start(); err != nil {
		return nil, fmt.Errorf("--trace-slow: %w", err)
	}
	return &slowTracer{prefix: prefix, log: log, fr: fr, written: map[string]int{}, last: map[string]time.Time{}}, nil
}

// hook is service.Options.Slow.
func (t *slowTracer) hook() func(string, time.Duration) {
	if t == nil {
		return nil
	}
	return t.slow
}

func (t *slowTracer) slow(what string, took time.Duration) {
	if took < slowLimits[what] {
		return
	}
	t.mu.Lock()
	now := time.Now()
	if t.written[what] >= slowTraces || now.Sub(t.last[what]) < time.Minute {
		t.mu.Unlock()
		return
	}
	t.written[what]++
	t.last[what] = now
	path := fmt.Sprintf("%s.%s.%d.trace", t.prefix, what, t.written[what])
	t.mu.Unlock()
	go func() { // not on the tick loop or the API's goroutine
		t.wmu.Lock()
		defer t.wmu.Unlock()
		f, err := os.Create(path)
		if err == nil {
			_, err = t.fr.WriteTo(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			t.log.Warn("--trace-slow: write the flight recorder", "file", path, "err", err)
			return
		}
		t.log.Warn("--trace-slow: a slow "+what+", its last seconds written", "took", took, "file", path)
	}()
}

func (t *slowTracer) stop() {
	if t != nil {
		t.fr.Stop()
	}
}
