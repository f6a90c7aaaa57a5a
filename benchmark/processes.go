package benchmark

import (
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
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/telemetry/record"
)

// The processes the proxy benchmark measures against, each a grayzone
// subcommand: a backend (`grayzone bench backend`) and grayzone's front door
// (`grayzone bench frontdoor`), and the clock they share with it.

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

// RecordedRequests asks a running bench front door what its recorder counted.
func RecordedRequests(control string) (int64, error) {
	var m map[string]int64
	err := getJSON(control+"/recorded", &m)
	return m["requests"], err
}
