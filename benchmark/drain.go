package benchmark

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

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
