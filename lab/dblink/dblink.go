// Package dblink is a zone's "database link" in the lab: an in-process
// fault-injecting TCP proxy (toxiproxy used as a library) between the app
// instances of a zone and the one PostgreSQL-speaking database.
//
// Faults act per database call, not per TCP connection or per chunk, because
// the app reuses pooled connections: a custom toxic follows PostgreSQL framing
// and rolls once per simple Query or Execute (see
// shared/notes/db-link-faults.md for why the built-in toxicity is wrong here).
// The link must carry plaintext (sslmode=disable): TLS hides the framing.
package dblink

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Fault kinds on a database link (scenario format, version 1).
const (
	// KindLatency makes each call wait Latency ± Jitter longer. It is added
	// once per call (Query or Execute), not per round trip, so connecting and
	// pgx's health pings are not slowed.
	KindLatency = "latency"
	// KindPacketLoss stalls each call with probability Percent until the
	// client gives up (the app's database timeout).
	KindPacketLoss = "packet_loss"
	// KindBlackhole stalls every call, and every new connection.
	KindBlackhole = "blackhole"
	// KindReset fails each call at once with probability Percent by
	// resetting its connection (TCP RST).
	KindReset = "reset"
)

// ErrClosed is returned by Set after Close.
var ErrClosed = errors.New("dblink: link closed")

// Fault is one fault active on a link. Several may be active at once (a zone
// fault and a region fault, say); their effects combine: latencies add up,
// probabilities are rolled independently, a blackhole swallows everything.
type Fault struct {
	Kind    string
	Percent float64       // packet_loss, reset: 0 < Percent <= 100
	Latency time.Duration // latency: the added delay
	Jitter  time.Duration // latency: uniform ± around Latency
}

func (f Fault) validate() error {
	switch f.Kind {
	case KindLatency:
		if f.Percent != 0 {
			return fmt.Errorf("%s: percent not allowed", f.Kind)
		}
		if f.Latency < 0 || f.Jitter < 0 {
			return fmt.Errorf("%s: negative latency %v or jitter %v", f.Kind, f.Latency, f.Jitter)
		}
	case KindPacketLoss, KindReset:
		if !(f.Percent > 0 && f.Percent <= 100) {
			return fmt.Errorf("%s: percent %v not in (0, 100]", f.Kind, f.Percent)
		}
		if f.Latency != 0 || f.Jitter != 0 {
			return fmt.Errorf("%s: latency/jitter not allowed", f.Kind)
		}
	case KindBlackhole:
		if f.Percent != 0 || f.Latency != 0 || f.Jitter != 0 {
			return fmt.Errorf("%s: percent/latency/jitter not allowed", f.Kind)
		}
	default:
		return fmt.Errorf("unknown fault kind %q (want %s, %s, %s or %s)",
			f.Kind, KindLatency, KindPacketLoss, KindBlackhole, KindReset)
	}
	return nil
}

// Options configure a Link.
type Options struct {
	// Seed drives every random choice of the link (loss and reset rolls,
	// jitter), so a sequential run is reproducible. The stream is derived
	// from Seed and the link's name: links sharing a Seed still roll
	// independently. Concurrent calls take rolls in scheduling order.
	Seed int64
	// Logger receives the link's logs (debug, and a warning if a connection
	// is not plaintext PostgreSQL); nil discards them.
	Logger *slog.Logger
}

// Link is one running database link.
type Link struct {
	name  string
	addr  string
	proxy *toxiproxy.Proxy
	st    *linkState
	log   *slog.Logger

	setMu     sync.Mutex // serialises Set so "changed" channels close once
	closeOnce sync.Once
	stopWatch chan struct{}
}

// outcome of rolling the faults for one call.
type outcome uint8

const (
	pass outcome = iota
	stall
	reset
)

type roll struct {
	percent float64
	out     outcome
}

// config is an immutable snapshot of the active faults.
type config struct {
	blackhole bool
	latency   []Fault
	rolls     []roll
	// changed is closed when this config is replaced, waking stalled
	// connections so they can re-evaluate.
	changed chan struct{}
}

// linkState is shared between the Link and the toxic instances toxiproxy
// creates per connection; they find it through the registry by id.
type linkState struct {
	id   string
	cfg  atomic.Pointer[config]
	done chan struct{} // closed by Close
	log  *slog.Logger

	rngMu sync.Mutex
	rng   *rand.Rand
}

var (
	registry sync.Map // id -> *linkState
	nextID   atomic.Uint64
)

func lookupState(id string) *linkState {
	v, ok := registry.Load(id)
	if !ok {
		return nil
	}
	return v.(*linkState)
}

// New starts a link listening on 127.0.0.1:0 and forwarding to upstreamAddr
// (host:port of the database). The link lives until Close, or until ctx is
// done.
func New(ctx context.Context, name, upstreamAddr string, opts Options) (*Link, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dblink %s: %w", name, err)
	}
	if _, _, err := net.SplitHostPort(upstreamAddr); err != nil {
		return nil, fmt.Errorf("dblink %s: upstream address %q: %w", name, upstreamAddr, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("link", name)

	st := &linkState{
		id:   fmt.Sprintf("%s#%d", name, nextID.Add(1)),
		done: make(chan struct{}),
		log:  log,
		rng:  rand.New(rand.NewPCG(uint64(opts.Seed), nameHash(name))),
	}
	st.cfg.Store(&config{changed: make(chan struct{})})
	registry.Store(st.id, st)

	// toxiproxy logs through zerolog; the lab logs through slog, so mute it.
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	proxy := toxiproxy.NewProxy(server, name, "127.0.0.1:0", upstreamAddr)
	if err := proxy.Start(); err != nil {
		registry.Delete(st.id)
		return nil, fmt.Errorf("dblink %s: start proxy: %w", name, err)
	}
	l := &Link{
		name:      name,
		addr:      proxy.Listen,
		proxy:     proxy,
		st:        st,
		log:       log,
		stopWatch: make(chan struct{}),
	}
	// Both toxics are in place before any client connects: toxiproxy sets
	// SO_LINGER 0 (so closing sends a real RST) only on connections opened
	// while a reset_peer toxic exists; at toxicity 0 it never fires itself.
	toxicJSON := []string{
		`{"name":"linger0","type":"reset_peer","stream":"upstream","toxicity":0,"attributes":{"timeout":0}}`,
		fmt.Sprintf(`{"name":"faults","type":%q,"stream":"upstream","toxicity":1,"attributes":{"link":%q}}`, toxicType, st.id),
	}
	for _, js := range toxicJSON {
		if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
			_ = l.Close()
			return nil, fmt.Errorf("dblink %s: add toxic: %w", name, err)
		}
	}
	go func() {
		select {
		case <-ctx.Done():
			_ = l.Close()
		case <-l.stopWatch:
		}
	}()
	log.Debug("db link started", "addr", l.addr, "upstream", upstreamAddr)
	return l, nil
}

// Name is the link's name.
func (l *Link) Name() string { return l.name }

// Addr is the host:port clients connect to instead of the database.
func (l *Link) Addr() string { return l.addr }

// Set replaces the active faults; an empty slice clears them. The new set
// applies to every call that starts after Set returns. A connection stalled
// by a blackhole is closed when the new set has no blackhole, like a link
// coming back; one stalled by packet loss stays lost until its client gives up.
func (l *Link) Set(faults []Fault) error {
	cfg := &config{changed: make(chan struct{})}
	for i, f := range faults {
		if err := f.validate(); err != nil {
			return fmt.Errorf("dblink %s: fault %d: %w", l.name, i, err)
		}
		switch f.Kind {
		case KindLatency:
			cfg.latency = append(cfg.latency, f)
		case KindBlackhole:
			cfg.blackhole = true
		case KindPacketLoss:
			cfg.rolls = append(cfg.rolls, roll{percent: f.Percent, out: stall})
		case KindReset:
			cfg.rolls = append(cfg.rolls, roll{percent: f.Percent, out: reset})
		}
	}
	l.setMu.Lock()
	defer l.setMu.Unlock()
	select {
	case <-l.st.done:
		return fmt.Errorf("dblink %s: set faults: %w", l.name, ErrClosed)
	default:
	}
	old := l.st.cfg.Swap(cfg)
	close(old.changed)
	l.log.Debug("db link faults set", "faults", faults)
	return nil
}

// Close stops the proxy, closes every connection through it and ends the
// goroutines serving them. It is safe to call more than once.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		l.setMu.Lock()
		close(l.st.done)
		l.setMu.Unlock()
		close(l.stopWatch)
		l.proxy.Stop()
		registry.Delete(l.st.id)
		l.log.Debug("db link closed")
	})
	return nil
}

// nameHash is FNV-1a of name: a stable per-link PCG stream selector.
func nameHash(name string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return h.Sum64()
}

// rollCall decides the fate of one call. Every fault draws, hit or not, so
// the random sequence consumed per call does not depend on the outcome.
func (s *linkState) rollCall(cfg *config) outcome {
	if len(cfg.rolls) == 0 {
		return pass
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	out := pass
	for _, r := range cfg.rolls {
		if s.rng.Float64()*100 < r.percent && out == pass {
			out = r.out
		}
	}
	return out
}

// delay is the added latency for one call: the sum of the active latency
// faults, each with its own uniform jitter.
func (s *linkState) delay(cfg *config) time.Duration {
	if len(cfg.latency) == 0 {
		return 0
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	var d time.Duration
	for _, f := range cfg.latency {
		d += f.Latency
		if f.Jitter > 0 {
			d += time.Duration(s.rng.Int64N(int64(2*f.Jitter)+1)) - f.Jitter
		}
	}
	return max(d, 0)
}
