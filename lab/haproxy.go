package lab

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/actuator/haproxy"
)

// front is the data plane customers and canaries go through.
type front interface {
	RegionalURL() string
	ZonalURL(zone string) string
	Close()
}

// haproxyFront is a real HAProxy in front of the lab's instances, with a
// generated configuration (regional and zonal frontends, health checks).
// It follows the lab's front door table, which the runbook and the
// instance group change: shifts go through actuator/haproxy, and launched
// or terminated instances become HAProxy servers or stop being ones.
type haproxyFront struct {
	proc   *haproxy.Process
	act    *haproxy.Actuator
	layout haproxy.Layout
	table  *frontdoor.Table
	dir    string
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// followEvery is how often the table is compared with HAProxy; talking to
// HAProxy happens only on a change (and every reconcile interval).
const followEvery = 20 * time.Millisecond

func startHAProxyFront(ctx context.Context, table *frontdoor.Table, log *slog.Logger) (*haproxyFront, error) {
	// Unix socket paths are limited to 108 bytes: keep the directory short.
	dir, err := os.MkdirTemp("", "gzlab-haproxy")
	if err != nil {
		return nil, err
	}
	h := &haproxyFront{table: table, dir: dir, log: log}
	h.layout = haproxy.Layout{Socket: filepath.Join(dir, "admin.sock"), Zonal: map[string]string{},
		HealthPath: "/health", HealthInterval: time.Second, Rise: 2, Fall: 2}
	if h.layout.Regional, err = freeLoopback(); err != nil {
		return nil, err
	}
	for _, z := range table.Zones() {
		if h.layout.Zonal[z], err = freeLoopback(); err != nil {
			return nil, err
		}
	}
	h.layout.Targets = h.targets()
	if h.proc, err = haproxy.Start(ctx, dir, h.layout.Config(), h.layout.Socket); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	h.act, err = haproxy.New(haproxy.Options{Runtime: h.proc.Runtime, Zones: h.layout.Zones(), Interval: time.Second, Log: log})
	if err != nil {
		h.Close()
		return nil, err
	}
	ctx, h.cancel = context.WithCancel(ctx)
	h.wg.Add(2)
	go func() { defer h.wg.Done(); h.act.Run(ctx) }()
	go func() { defer h.wg.Done(); h.follow(ctx) }()
	return h, nil
}

func (h *haproxyFront) targets() []haproxy.Target {
	var out []haproxy.Target
	for _, t := range h.table.Targets() {
		out = append(out, haproxy.Target{ID: t.ID, Zone: t.Zone, Addr: t.Addr})
	}
	return out
}

// follow applies the table's shifts and membership to HAProxy.
func (h *haproxyFront) follow(ctx context.Context) {
	tick := time.NewTicker(followEvery)
	defer tick.Stop()
	last, lastErr := "", ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ts := h.targets()
		if key := fmt.Sprint(ts); key != last {
			if err := h.act.SetTargets(ctx, h.layout, ts); err != nil {
				if err.Error() != lastErr { // retried every tick: say it once
					h.log.Warn("haproxy: servers not in step yet; retrying", "err", err)
					lastErr = err.Error()
				}
			} else {
				last, lastErr = key, ""
			}
		}
		for _, z := range h.table.Zones() {
			if err := h.act.SetShifted(ctx, z, h.table.Shifted(z)); err != nil {
				h.log.Warn("haproxy: shift not applied yet; the reconcile loop retries", "zone", z, "err", err)
			} else if err := h.act.SetWeight(ctx, z, h.table.Weight(z)); err != nil { // a gradual return (policy.ramp)
				h.log.Warn("haproxy: weight not applied yet; retrying", "zone", z, "err", err)
			}
		}
	}
}

func (h *haproxyFront) RegionalURL() string         { return "http://" + h.layout.Regional }
func (h *haproxyFront) ZonalURL(zone string) string { return "http://" + h.layout.Zonal[zone] }

func (h *haproxyFront) Close() {
	if h.cancel != nil {
		h.cancel()
		h.wg.Wait()
	}
	if h.proc != nil {
		h.proc.Stop()
	}
	os.RemoveAll(h.dir)
}

func freeLoopback() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
