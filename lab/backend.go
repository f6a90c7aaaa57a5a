package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/store"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/operation"
)

// errReadOnly refuses mutations: in the lab, the runbook owns the shifts.
var errReadOnly = fmt.Errorf("the lab is read-only: its shifts are the runbook's (run grayzone serve to shift by hand): %w", shift.ErrConflict)

// backend is the lab's read-only api.Backend, so the dashboard can watch a run.
type backend struct{ c *core }

var _ api.Backend = backend{}

func (b backend) Status(ctx context.Context) (api.Status, error) {
	c := b.c
	c.mu.Lock()
	a := c.last
	c.mu.Unlock()
	phase, zone := c.ctrl.Phase()
	rs := api.ResourceStatus{Name: Resource, Detector: a.Profile, Phase: string(phase), PhaseZone: zone,
		Excluded: c.group.Snapshot().Excluded, Pending: []string{}, Regional: a.Regional, Isolated: a.Isolated, Why: a.Why, Autoshift: "enabled",
		FailStatic: api.FailStaticOf(a.FailStatic)}
	if rs.Excluded == nil {
		rs.Excluded = []string{}
	}
	if !c.ctrl.Mitigating() {
		rs.Autoshift = "disabled"
	}
	for _, p := range c.ctrl.Pending() {
		rs.Pending = append(rs.Pending, p.String())
	}
	st, _ := c.ctrl.RunbookState()
	rs.Returning = st.Weight
	if shs := b.shifts(); len(shs) > 0 && shs[0].Status == shift.Active {
		rs.ActiveShift = &shs[0]
	}
	targets := c.table.Targets()
	for _, z := range c.sc.Topology.Zones {
		zs := a.Zone(z)
		out := api.ZoneStatus{Zone: z, Availability: zs.Availability, P99Ms: zs.P99, Requests: zs.Requests, Healthy: zs.Healthy,
			Impacted: zs.Impacted, Outlier: zs.Outlier, Contributors: zs.Contributors, Isolated: zs.Isolated, Silent: zs.Silent, Shifted: c.table.Shifted(z), Targets: []api.Target{}}
		for _, t := range targets {
			if t.Zone == z {
				out.Targets = append(out.Targets, api.Target{ID: t.ID, Addr: t.Addr, Healthy: t.Healthy})
			}
		}
		rs.Zones = append(rs.Zones, out)
	}
	return api.Status{Now: time.Now().UTC(), Resources: []api.ResourceStatus{rs}}, nil
}

func (b backend) Alarms(ctx context.Context, resource string) ([]api.Alarm, error) {
	if resource != "" && resource != Resource {
		return nil, fmt.Errorf("resource %q: the lab has only %q: %w", resource, Resource, shift.ErrNotFound)
	}
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	out := []api.Alarm{}
	for _, al := range b.c.last.Alarms.All() {
		out = append(out, api.Alarm{Resource: Resource, Name: al.Name, State: string(al.State), Reason: al.Reason.String()})
	}
	return out, nil
}

// shifts turns the runbook's history into shift records, newest first.
func (b backend) shifts() []shift.Shift {
	var out []shift.Shift
	for _, ev := range b.c.ctrl.Events() {
		switch ev.Kind {
		case runbook.ShiftStarted:
			out = append(out, shift.Shift{ID: fmt.Sprintf("lab-%d", len(out)+1), Resource: Resource, AwayFrom: ev.Zone, Status: shift.Active,
				Origin: shift.Auto, Comment: "autoshift: isolated zonal impact", StartedBy: "autoshift", StartedAt: ev.At, UpdatedAt: ev.At,
				ExpiresAt: ev.At.Add(shift.MaxExpiresIn)})
		case runbook.ShiftEnded:
			for i := len(out) - 1; i >= 0; i-- {
				if out[i].AwayFrom == ev.Zone && out[i].Status == shift.Active {
					at := ev.At
					out[i].Status, out[i].EndedAt, out[i].EndedBy, out[i].UpdatedAt = shift.Canceled, &at, "autoshift: zone recovered", at
					break
				}
			}
		}
	}
	slices.Reverse(out)
	return out
}

func (b backend) Shifts(ctx context.Context, f shift.ListFilter) ([]shift.Shift, error) {
	out := []shift.Shift{}
	for _, s := range b.shifts() {
		if (f.Resource == "" || f.Resource == s.Resource) && (f.Status == "" || f.Status == s.Status) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (b backend) Shift(ctx context.Context, id string) (shift.Shift, error) {
	for _, s := range b.shifts() {
		if s.ID == id {
			return s, nil
		}
	}
	return shift.Shift{}, fmt.Errorf("shift %q: %w", id, shift.ErrNotFound)
}

func (backend) StartShift(context.Context, shift.StartRequest) (shift.Shift, error) {
	return shift.Shift{}, errReadOnly
}

func (backend) UpdateShift(context.Context, string, shift.UpdateRequest) (shift.Shift, error) {
	return shift.Shift{}, errReadOnly
}

func (backend) CancelShift(context.Context, string, string) (shift.Shift, error) {
	return shift.Shift{}, errReadOnly
}

// Audit is the runbook's history and the detections, newest first.
func (b backend) Audit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	var out []store.AuditEntry
	for _, d := range b.c.ctrl.Detections() {
		out = append(out, store.AuditEntry{At: d.At, Kind: "decision", Resource: Resource, Zone: d.Zone, Actor: "autoshift", Message: "isolated impact: " + d.Why})
	}
	for _, ev := range b.c.ctrl.Events() {
		msg := fmt.Sprintf("%s %s", ev.Kind, ev.Zone)
		if ev.Detail != "" {
			msg += ": " + ev.Detail
		}
		out = append(out, store.AuditEntry{At: ev.At, Kind: string(ev.Kind), Resource: Resource, Zone: ev.Zone, Actor: "runbook", Message: msg})
	}
	slices.SortStableFunc(out, func(a, b store.AuditEntry) int { return a.At.Compare(b.At) })
	for i := range out {
		out[i].Seq = int64(i + 1)
	}
	slices.Reverse(out)
	if q.After > 0 {
		out = slices.DeleteFunc(out, func(e store.AuditEntry) bool { return e.Seq <= q.After })
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func (backend) Practices(context.Context, string, int) ([]store.PracticeRun, error) {
	return []store.PracticeRun{}, nil
}

func (backend) Ingest(context.Context, string, []observation.Observation) error {
	return fmt.Errorf("the lab makes its own observations: %w", shift.ErrConflict)
}

func (backend) Decisions(context.Context) ([]api.Decision, error) { return []api.Decision{}, nil }

func (backend) Approve(_ context.Context, id, _ string) (api.Decision, error) {
	return api.Decision{}, fmt.Errorf("decision %q: %w", id, shift.ErrNotFound)
}

// History is the run's timeline with fault, shift, exclusion and detection spans.
func (b backend) History(ctx context.Context, resource string, since time.Time) (api.History, error) {
	c := b.c
	if resource != Resource {
		return api.History{}, fmt.Errorf("resource %q: the lab has only %q: %w", resource, Resource, shift.ErrNotFound)
	}
	h := api.History{Resource: Resource, Points: []api.HistoryPoint{}, Spans: []api.Span{}, AvailabilityTarget: 0.99, LatencyThresholds: map[string]float64{}}
	for _, op := range operation.Catalog {
		h.LatencyThresholds[op.Name] = float64(op.Threshold) / float64(time.Millisecond)
	}
	ms := func(t time.Time) int64 { return t.UnixMilli() }
	c.mu.Lock()
	for _, p := range c.timeline {
		at := c.start.Add(time.Duration(p.At * float64(time.Second)))
		if !since.IsZero() && at.Before(since) {
			continue
		}
		hp := api.HistoryPoint{T: ms(at), Phase: p.Phase}
		for _, z := range p.Zones {
			hp.Zones = append(hp.Zones, api.ZonePoint{Zone: z.Zone, Availability: z.Availability, Requests: z.Requests, P99Ms: z.P99,
				CanaryAvailability: z.CanaryAvailability, CanaryP99Ms: z.CanaryP99, Healthy: z.Healthy, Isolated: z.Isolated,
				Shifted: p.Shift == z.Zone && p.Phase != string(runbook.Idle) && p.Phase != string(runbook.Shifting), Excluded: z.Excluded})
		}
		h.Points = append(h.Points, hp)
	}
	c.mu.Unlock()
	elapsed := time.Since(c.start)
	for _, f := range c.sc.Faults {
		if f.At > elapsed {
			continue
		}
		sp := api.Span{Kind: "fault", Zone: f.Target.Zone, Label: fmt.Sprintf("%s on %s", f.Kind, f.Target), From: ms(c.start.Add(f.At))}
		if end := f.End(c.sc.Duration); end <= elapsed {
			to := ms(c.start.Add(end))
			sp.To = &to
		}
		h.Spans = append(h.Spans, sp)
	}
	for _, s := range b.shifts() {
		sp := api.Span{Kind: "shift", Zone: s.AwayFrom, Label: "autoshift", From: ms(s.StartedAt)}
		if s.EndedAt != nil {
			to := ms(*s.EndedAt)
			sp.To = &to
		}
		h.Spans = append(h.Spans, sp)
	}
	for _, ev := range c.ctrl.Events() {
		switch ev.Kind {
		case runbook.Excluded:
			h.Spans = append(h.Spans, api.Span{Kind: "exclusion", Zone: ev.Zone, Label: "excluded from the instance group", From: ms(ev.At)})
		case runbook.Included:
			for i := len(h.Spans) - 1; i >= 0; i-- {
				if h.Spans[i].Kind == "exclusion" && h.Spans[i].Zone == ev.Zone && h.Spans[i].To == nil {
					to := ms(ev.At)
					h.Spans[i].To = &to
					break
				}
			}
		}
	}
	for _, d := range c.ctrl.Detections() {
		at := ms(d.At)
		h.Spans = append(h.Spans, api.Span{Kind: "detection", Zone: d.Zone, Label: d.Why, From: at, To: &at})
	}
	return h, nil
}

// serveDashboard serves the API (read-only) and the dashboard for a real-mode
// run on addr, falling back to a free port when addr is taken.
func serveDashboard(ctx context.Context, o Options, c *core) (string, func(), error) {
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, fmt.Errorf("lab: dashboard: %w", err)
		}
	}
	b := backend{c: c}
	mux := http.NewServeMux()
	mux.Handle("/", api.NewHandler(b, api.Options{OpenReads: true, Log: o.Log}))
	if o.Dashboard != nil {
		for pattern, h := range o.Dashboard(b) {
			mux.Handle(pattern, h)
		}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Log.Error("lab dashboard stopped", "err", err)
		}
	}()
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}
