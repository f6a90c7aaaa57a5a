package service

import (
	"context"
	"time"

	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/server/api"
)

// historyLen bounds the timeline kept per resource: one point a second for an hour.
const historyLen = 3600

// history is a resource's timeline: a ring of the last historyLen points,
// one a second. It is most of a fleet's live heap (an hour of 3 zones is
// 10,800 zone points a resource), so it is kept compact and pointer-free:
// a point is a fixed-size record in one flat array, its phase and zones
// indices into small tables of names, not a slice and strings of their
// own. The garbage collector then has nothing in it to mark (it had 4
// million small objects, linked by pointers, at 1,000 resources), and a
// new point overwrites the oldest instead of shifting the hour down.
// api.HistoryPoints are made only when the timeline is read.
type history struct {
	stride int         // zone records per point (the most zones a point had)
	points []histPoint // the ring, oldest at head once full
	zones  []histZone  // point i's zones are zones[i*stride:][:points[i].n]
	head   int         // the oldest point, once len(points) == historyLen
	phases []string    // by histPoint.phase
	names  []string    // by histZone.zone
}

type histPoint struct {
	t     int64 // Unix milliseconds
	phase uint8
	n     uint8 // zones
}

type histZone struct {
	avail, p99, canaryAvail, canaryP99 float64
	requests                           int64
	zone                               uint8
	flags                              uint8 // histHealthy | ...
}

const (
	histHealthy = 1 << iota
	histIsolated
	histShifted
	histExcluded
)

// index is s's place in names, added if new (the tables hold a resource's
// few zones and runbook phases).
func index(names *[]string, s string) uint8 {
	for i, n := range *names {
		if n == s {
			return uint8(i)
		}
	}
	*names = append(*names, s)
	return uint8(len(*names) - 1)
}

// last is the newest point's time (0: none).
func (h *history) last() int64 {
	if len(h.points) == 0 {
		return 0
	}
	return h.points[(h.head+len(h.points)-1)%len(h.points)].t
}

// add appends p, overwriting the oldest point once the ring is full.
func (h *history) add(p api.HistoryPoint) {
	if len(p.Zones) > h.stride {
		h.restride(len(p.Zones))
	}
	hp := histPoint{t: p.T, phase: index(&h.phases, p.Phase), n: uint8(len(p.Zones))}
	var i int
	if len(h.points) < historyLen {
		i = len(h.points)
		h.points = append(h.points, hp)
		h.zones = append(h.zones, make([]histZone, h.stride)...)
	} else {
		i = h.head
		h.points[i] = hp
		h.head = (h.head + 1) % historyLen
	}
	zs := h.zones[i*h.stride:][:h.stride]
	for j, z := range p.Zones {
		f := flag(z.Healthy, histHealthy) | flag(z.Isolated, histIsolated) | flag(z.Shifted, histShifted) | flag(z.Excluded, histExcluded)
		zs[j] = histZone{avail: z.Availability, p99: z.P99Ms, canaryAvail: z.CanaryAvailability, canaryP99: z.CanaryP99Ms,
			requests: z.Requests, zone: index(&h.names, z.Zone), flags: f}
	}
}

func flag(on bool, f uint8) uint8 {
	if on {
		return f
	}
	return 0
}

// restride makes room for points of n zones.
func (h *history) restride(n int) {
	zones := make([]histZone, len(h.points)*n, cap(h.points)*n)
	for i, p := range h.points {
		copy(zones[i*n:], h.zones[i*h.stride:][:p.n])
	}
	h.stride, h.zones = n, zones
}

// each calls f with the points from the oldest, in order, as the API has
// them, while f returns true.
func (h *history) each(f func(api.HistoryPoint) bool) {
	for k := range h.points {
		i := (h.head + k) % len(h.points)
		p := h.points[i]
		hp := api.HistoryPoint{T: p.t, Phase: h.phases[p.phase]}
		if p.n > 0 { // nil without zones, as the API had it
			hp.Zones = make([]api.ZonePoint, p.n)
		}
		for j, z := range h.zones[i*h.stride:][:p.n] {
			hp.Zones[j] = api.ZonePoint{Zone: h.names[z.zone], Availability: z.avail, Requests: z.requests, P99Ms: z.p99,
				CanaryAvailability: z.canaryAvail, CanaryP99Ms: z.canaryP99, Healthy: z.flags&histHealthy != 0,
				Isolated: z.flags&histIsolated != 0, Shifted: z.flags&histShifted != 0, Excluded: z.flags&histExcluded != 0}
		}
		if !f(hp) {
			return
		}
	}
}

// record appends a point once per second.
func (r *resource) record(now time.Time, a detect.Assessment) {
	t := now.Truncate(time.Second).UnixMilli()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.history.last() == t {
		return
	}
	phase, _ := r.ctrl.Phase()
	st, _ := r.ctrl.RunbookState()
	p := api.HistoryPoint{T: t, Phase: string(phase), Zones: r.zonePoints[:0]}
	for _, z := range a.Zones {
		p.Zones = append(p.Zones, api.ZonePoint{Zone: z.Zone, Availability: z.Availability, Requests: z.Requests, P99Ms: z.P99,
			CanaryAvailability: z.CanaryAvailability, CanaryP99Ms: z.CanaryP99, Healthy: z.Healthy,
			Isolated: z.Isolated, Shifted: r.table.Shifted(z.Zone), Excluded: st.Excluded && st.Zone == z.Zone})
	}
	r.zonePoints = p.Zones // reused: add copies what it keeps
	r.history.add(p)
}

// History implements api.Backend.
func (s *Service) History(ctx context.Context, name string, since time.Time) (api.History, error) {
	r, err := s.resource(name)
	if err != nil {
		return api.History{}, err
	}
	h := api.History{Resource: name, Points: []api.HistoryPoint{}, Spans: []api.Span{}, AvailabilityTarget: 0.99,
		LatencyThresholds: map[string]float64{}}
	for op, d := range r.cfg.Operations {
		h.LatencyThresholds[op] = float64(d) / float64(time.Millisecond)
	}
	from := since.UnixMilli()
	r.mu.Lock()
	r.history.each(func(p api.HistoryPoint) bool {
		if since.IsZero() || p.T >= from {
			h.Points = append(h.Points, p)
		}
		return true
	})
	r.mu.Unlock()
	for _, sh := range s.shifts.List(shift.ListFilter{Resource: name}) {
		sp := api.Span{Kind: "shift", Zone: sh.AwayFrom, Label: string(sh.Origin) + " shift " + sh.ID, From: sh.StartedAt.UnixMilli()}
		if sh.EndedAt != nil {
			to := sh.EndedAt.UnixMilli()
			sp.To = &to
		}
		if since.IsZero() || sp.To == nil || *sp.To >= from {
			h.Spans = append(h.Spans, sp)
		}
	}
	for _, p := range r.ctrl.FailStaticPeriods() {
		sp := api.Span{Kind: "fail_static", Label: p.Reason + ": " + p.Why, From: p.Start.UnixMilli()}
		if !p.End.IsZero() {
			to := p.End.UnixMilli()
			sp.To = &to
		}
		if since.IsZero() || sp.To == nil || *sp.To >= from {
			h.Spans = append(h.Spans, sp)
		}
	}
	for _, d := range r.ctrl.Detections() {
		at := d.At.UnixMilli()
		if since.IsZero() || at >= from {
			h.Spans = append(h.Spans, api.Span{Kind: "detection", Zone: d.Zone, Label: d.Why, From: at, To: &at})
		}
	}
	return h, nil
}
