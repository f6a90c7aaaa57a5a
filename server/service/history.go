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

// record appends a point once per second.
func (r *resource) record(now time.Time, a detect.Assessment) {
	t := now.Truncate(time.Second).UnixMilli()
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.history); n > 0 && r.history[n-1].T == t {
		return
	}
	phase, _ := r.ctrl.Phase()
	st, _ := r.ctrl.RunbookState()
	p := api.HistoryPoint{T: t, Phase: string(phase)}
	for _, z := range a.Zones {
		p.Zones = append(p.Zones, api.ZonePoint{Zone: z.Zone, Availability: z.Availability, Requests: z.Requests, P99Ms: z.P99,
			CanaryAvailability: z.CanaryAvailability, CanaryP99Ms: z.CanaryP99, Healthy: z.Healthy,
			Isolated: z.Isolated, Shifted: r.table.Shifted(z.Zone), Excluded: st.Excluded && st.Zone == z.Zone})
	}
	if len(r.history) == historyLen {
		copy(r.history, r.history[1:])
		r.history = r.history[:historyLen-1]
	}
	r.history = append(r.history, p)
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
	for _, p := range r.history {
		if since.IsZero() || p.T >= from {
			h.Points = append(h.Points, p)
		}
	}
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
