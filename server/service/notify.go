package service

// The glue between serve's audit log and notify: every audit entry serve
// writes passes appendAudit (called by Service.audit, the one place serve
// writes its audit log), which derives grayzone's events from it and writes
// both in one transaction; the Dispatcher then delivers them from the
// outbox at the edge, only while this replica leads.

import (
	"context"
	"encoding/json"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/notify"
	"github.com/grayzone/grayzone/notify/alertmanager"
	"github.com/grayzone/grayzone/notify/event"
	"github.com/grayzone/grayzone/notify/webhook"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/store"
)

// notifications is serve's notification state; nil when none are configured.
type notifications struct {
	disp      *notify.Dispatcher
	endpoints []notify.Endpoint
	mu        sync.Mutex
	failing   map[[3]string]bool // resource, zone, action: an actuator.failed told, no recovery yet
}

// actionFailures counts failed actions by resource and action, notifications
// or not (grayzone_action_failures_total).
type actionFailures struct {
	mu sync.Mutex
	n  map[[2]string]int64
}

func (a *actionFailures) add(resource, action string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == nil {
		a.n = map[[2]string]int64{}
	}
	a.n[[2]string{resource, action}]++
}

// outboxKeep is how long delivered and given-up outbox rows are kept.
const outboxKeep = 7 * 24 * time.Hour

// openNotify builds the notifiers the configuration names.
func (s *Service) openNotify() {
	nc := s.cfg.Notifications
	if !nc.Enabled() {
		return
	}
	if host, _, err := net.SplitHostPort(s.cfg.Listen); nc.DashboardURL == "" && (err != nil || host == "" || net.ParseIP(host).IsUnspecified()) {
		s.log.Warn("notifications: links in alerts and events point at the listen address, which people cannot open; set notifications.dashboard_url",
			"listen", s.cfg.Listen)
	}
	n := &notifications{failing: map[[3]string]bool{}}
	for _, a := range nc.Alertmanagers {
		n.endpoints = append(n.endpoints, notify.Endpoint{Name: a.Name, Kind: "alertmanager", Accepts: alertmanager.IsAlert,
			Notifier: &alertmanager.Notifier{URL: a.URL, ResendEvery: a.ResendEvery, Now: s.clock.Now, State: s.db, StateKey: "notify/alertmanager/" + a.Name,
				Holds: s.alertHolds}})
	}
	for _, w := range nc.Webhooks {
		var accepts func(event.Event) bool
		if w.Events != nil {
			kinds := w.Events
			accepts = func(e event.Event) bool {
				for _, k := range kinds {
					if e.Kind == k {
						return true
					}
				}
				return false
			}
		}
		n.endpoints = append(n.endpoints, notify.Endpoint{Name: w.Name, Kind: "webhook", Accepts: accepts,
			Notifier: &webhook.Notifier{URL: w.URL, Secret: w.Secret, Now: s.clock.Now}})
	}
	n.disp = notify.New(notify.Options{Outbox: s.db.Outbox(), Endpoints: n.endpoints, Retry: nc.Retry, Clock: s.clock,
		Log: s.log, Leading: s.leads})
	s.notify = n
}

// startNotify runs the Dispatcher (and an hourly prune of old outbox rows)
// in their own goroutines: a slow or down endpoint never holds up a tick.
func (s *Service) startNotify(ctx context.Context, wg *sync.WaitGroup) {
	if s.notify == nil {
		return
	}
	for _, ep := range s.notify.endpoints {
		if w, ok := ep.Notifier.(*webhook.Notifier); ok {
			w.Source = s.dashboardURL() // now that the API is bound: its real address
		}
	}
	wg.Go(func() { s.notify.disp.Run(ctx) })
	wg.Go(func() {
		for {
			if s.leads() {
				if err := s.db.PruneOutbox(ctx, s.clock.Now().Add(-outboxKeep)); err != nil && ctx.Err() == nil {
					s.log.Warn("notify: prune outbox", "err", err)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-s.clock.After(time.Hour):
			}
		}
	})
}

// appendAudit writes an audit entry and the events it carries, together.
func (s *Service) appendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error) {
	if e.Kind == "action_failed" {
		action, _, _ := strings.Cut(e.Message, " ")
		s.failures.add(e.Resource, action)
	}
	n := s.notify
	if n == nil {
		return s.db.Append(ctx, e)
	}
	var queued []store.Queued
	for _, ev := range s.eventsFor(e) {
		var eps []string
		for _, ep := range n.endpoints {
			if ep.Accepts == nil || ep.Accepts(*ev) {
				eps = append(eps, ep.Name)
			}
		}
		if len(eps) > 0 {
			queued = append(queued, store.Queued{Event: ev, Endpoints: eps})
		}
	}
	out, err := s.db.AppendEvents(ctx, e, queued)
	if err == nil && len(queued) > 0 {
		n.disp.Wake()
	}
	return out, err
}

// dashboardURL is the dashboard's base URL, without a trailing slash.
func (s *Service) dashboardURL() string {
	if u := s.cfg.Notifications.DashboardURL; u != "" {
		return strings.TrimRight(u, "/")
	}
	select {
	case <-s.ready:
		return s.APIURL()
	default:
		return "http://" + s.cfg.Listen
	}
}

// ApprovalLink is where an operator approves decision id in the dashboard.
func (s *Service) ApprovalLink(id string) string {
	return s.dashboardURL() + "/?decision=" + url.QueryEscape(id)
}

// eventsFor derives grayzone's events from an audit entry. The entries'
// kinds and actors are the audit log's vocabulary; where an entry's kind
// covers several events (decision, fail_static, practice, action), its
// message's fixed opening tells them apart.
func (s *Service) eventsFor(e store.AuditEntry) []*event.Event {
	ev := &event.Event{ID: event.NewID(), Version: event.Version, At: e.At.UTC(), Resource: e.Resource, Zone: e.Zone,
		Actor: e.Actor, Message: e.Message, Link: s.dashboardURL() + "/"}
	detail := map[string]string{}
	_ = json.Unmarshal(e.Detail, &detail) // absent or not a string map: no detail
	one := func(k event.Kind) []*event.Event { ev.Kind = k; return []*event.Event{ev} }
	switch e.Kind {
	case "decision":
		if why, ok := strings.CutPrefix(e.Message, "isolated impact: "); ok {
			ev.Why = why
			return one(event.Detection)
		}
	case "vetoed":
		if d, ok := s.pendingDecision(e.Resource, e.Zone); ok {
			ev.DecisionID, ev.Why, ev.Link = d.ID, d.Why, s.ApprovalLink(d.ID)
			return one(event.ApprovalPending)
		}
	case "approved":
		if id := detail["decision_id"]; id != "" {
			ev.DecisionID, ev.Link = id, s.ApprovalLink(id)
			return one(event.ApprovalGiven)
		}
	case "shift_started", "shift_observed":
		s.shiftOf(ev, detail["shift_id"], true)
		if e.Kind == "shift_observed" {
			ev.Origin = string(shift.External)
		}
		return one(event.ShiftStarted)
	case "shift_updated":
		s.shiftOf(ev, detail["shift_id"], true)
		return one(event.ShiftExtended)
	case "shift_canceled", "shift_ended", "shift_expired":
		s.shiftOf(ev, detail["shift_id"], false)
		return one(event.ShiftEnded)
	case "shift_refused":
		ev.ShiftID, ev.Action = detail["shift_id"], "arc_zonal_shift"
		return one(event.ActuatorRefused)
	case "practice":
		if strings.HasPrefix(e.Message, "practice run started: ") {
			s.shiftOf(ev, "", true)
			return one(event.ShiftStarted)
		}
		if strings.HasPrefix(e.Message, "practice run away from ") {
			s.shiftOf(ev, "", false)
			ev.Origin = string(shift.Practice)
			return one(event.ShiftEnded)
		}
	case "fail_static":
		// "fail static (REASON): ..." or "fail static (REASON) ended after ..."
		rest, _ := strings.CutPrefix(e.Message, "fail static (")
		reason, after, _ := strings.Cut(rest, ")")
		ev.Reason = reason
		if strings.HasPrefix(after, " ended") {
			return one(event.FailStaticLeft)
		}
		return one(event.FailStaticEntered)
	case "action", "action_failed":
		// The controller's message opens with the action: "KIND resource/zone ...".
		action, _, _ := strings.Cut(e.Message, " ")
		ev.Action = action
		return s.actionEvents(ev, e.Kind == "action_failed")
	case "leader":
		return one(event.LeadershipGained)
	case "leader_lost":
		return one(event.LeadershipLost)
	}
	return nil
}

// actionEvents: the first failure of a streak is told (actuator.failed),
// and the success that ends it (actuator.recovered); an exclusion or
// inclusion done is told as such.
func (s *Service) actionEvents(ev *event.Event, failed bool) []*event.Event {
	n := s.notify
	k := [3]string{ev.Resource, ev.Zone, ev.Action}
	n.mu.Lock()
	was := n.failing[k]
	if failed {
		n.failing[k] = true
	} else {
		delete(n.failing, k)
	}
	n.mu.Unlock()
	var out []*event.Event
	switch {
	case failed && !was:
		ev.Kind = event.ActuatorFailed
		return []*event.Event{ev}
	case failed:
		return nil
	case was:
		rec := *ev
		rec.ID, rec.Kind = event.NewID(), event.ActuatorRecovered
		out = append(out, &rec)
	}
	switch ev.Action {
	case "exclude_zone":
		ev.Kind = event.ZoneExcluded
		out = append(out, ev)
	case "include_zone":
		ev.Kind = event.ZoneIncluded
		out = append(out, ev)
	}
	return out
}

// shiftOf fills a shift event from the shift: id when known, else the
// resource's active shift (active) or its latest ended one in the zone.
func (s *Service) shiftOf(ev *event.Event, id string, active bool) {
	var sh shift.Shift
	var ok bool
	if id != "" {
		got, err := s.shifts.Get(id)
		sh, ok = got, err == nil
	} else if active {
		sh, ok = s.shifts.Active(ev.Resource)
	} else {
		for _, c := range s.shifts.List(shift.ListFilter{Resource: ev.Resource}) {
			if c.AwayFrom == ev.Zone && c.Status != shift.Active && (!ok || c.UpdatedAt.After(sh.UpdatedAt)) {
				sh, ok = c, true
			}
		}
	}
	if !ok {
		return
	}
	ev.ShiftID, ev.Origin, ev.Why = sh.ID, string(sh.Origin), sh.Reason
	if ev.Zone == "" {
		ev.Zone = sh.AwayFrom
	}
}

// alertHolds says whether an active alert's condition still holds, for the
// one condition whose end can go untold: decisions live in memory, so a
// restart (or a new leader) loses a pending one without an event. Every
// other condition's end is an event, delivered in order.
func (s *Service) alertHolds(l map[string]string) bool {
	if l["alertname"] == alertmanager.ApprovalPending {
		d, ok := s.pendingDecision(l["resource"], l["zone"])
		return ok && d.ID == l["decision"]
	}
	return true
}

// pendingDecision is the resource's decision about zone awaiting approval.
func (s *Service) pendingDecision(resource, zone string) (api.Decision, bool) {
	r := s.byName[resource]
	if r == nil {
		return api.Decision{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.decisions {
		if d.Zone == zone && d.Status == "pending" {
			return *d, true
		}
	}
	return api.Decision{}, false
}

// deliveryStatus is each endpoint's outbox and counts, for status and the
// dashboard.
func (s *Service) deliveryStatus(ctx context.Context) []api.DeliveryStatus {
	n := s.notify
	if n == nil {
		return nil
	}
	stats, _ := s.db.OutboxStats(ctx) // unreadable: counts without the queue
	byName := map[string]store.OutboxStat{}
	for _, st := range stats {
		byName[st.Endpoint] = st
	}
	now := s.clock.Now()
	var out []api.DeliveryStatus
	for _, c := range n.disp.Stats() {
		ob := byName[c.Endpoint]
		d := api.DeliveryStatus{Endpoint: c.Endpoint, Kind: c.Kind, Pending: ob.Pending, Delivered: c.Delivered,
			Failures: c.Failures, GaveUp: c.GaveUp, LastError: c.LastError}
		if ob.OldestPending != nil {
			d.LagSeconds = now.Sub(*ob.OldestPending).Seconds()
		}
		out = append(out, d)
	}
	return out
}

type notifyCollector Service

var (
	mNotifyDelivered = prometheus.NewDesc("grayzone_notify_delivered_total", "Events delivered to the endpoint by this process.", []string{"endpoint", "kind"}, nil)
	mNotifyFailures  = prometheus.NewDesc("grayzone_notify_failures_total", "Failed delivery attempts to the endpoint (each retried with back-off, or given up).", []string{"endpoint", "kind"}, nil)
	mNotifyGaveUp    = prometheus.NewDesc("grayzone_notify_given_up_total", "Events given up on (refused as malformed, or undelivered past notifications.retry.give_up_after).", []string{"endpoint", "kind"}, nil)
	mNotifyPending   = prometheus.NewDesc("grayzone_notify_pending", "Events in the outbox waiting for the endpoint.", []string{"endpoint", "kind"}, nil)
	mNotifyLag       = prometheus.NewDesc("grayzone_notify_lag_seconds", "Age of the oldest event waiting for the endpoint (0: none waits).", []string{"endpoint", "kind"}, nil)
	mShiftStarted    = prometheus.NewDesc("grayzone_shift_started_timestamp_seconds", "When the active zonal shift started (Unix seconds); absent with none.", []string{"resource", "zone", "origin"}, nil)
	mDecisions       = prometheus.NewDesc("grayzone_decisions_pending", "Automatic shifts decided and waiting for an operator's approval.", []string{"resource"}, nil)
	mDecisionOldest  = prometheus.NewDesc("grayzone_decision_pending_oldest_timestamp_seconds", "When the oldest decision still waiting for approval was made (Unix seconds); absent with none.", []string{"resource"}, nil)
	mActionFailures  = prometheus.NewDesc("grayzone_action_failures_total", "Runbook actions that failed (each is retried), by action.", []string{"resource", "action"}, nil)
)

func (c *notifyCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *notifyCollector) Collect(ch chan<- prometheus.Metric) {
	s := (*Service)(c)
	for _, d := range s.deliveryStatus(context.Background()) {
		ch <- prometheus.MustNewConstMetric(mNotifyDelivered, prometheus.CounterValue, float64(d.Delivered), d.Endpoint, d.Kind)
		ch <- prometheus.MustNewConstMetric(mNotifyFailures, prometheus.CounterValue, float64(d.Failures), d.Endpoint, d.Kind)
		ch <- prometheus.MustNewConstMetric(mNotifyGaveUp, prometheus.CounterValue, float64(d.GaveUp), d.Endpoint, d.Kind)
		ch <- prometheus.MustNewConstMetric(mNotifyPending, prometheus.GaugeValue, float64(d.Pending), d.Endpoint, d.Kind)
		ch <- prometheus.MustNewConstMetric(mNotifyLag, prometheus.GaugeValue, d.LagSeconds, d.Endpoint, d.Kind)
	}
	active := s.activeShifts()
	for _, r := range s.resources {
		if act, ok := active[r.cfg.Name]; ok {
			ch <- prometheus.MustNewConstMetric(mShiftStarted, prometheus.GaugeValue, float64(act.StartedAt.UnixMilli())/1000, r.cfg.Name, act.AwayFrom, string(act.Origin))
		}
		var pending int
		var oldest time.Time
		r.mu.Lock()
		for _, d := range r.decisions {
			if d.Status == "pending" {
				pending++
				if oldest.IsZero() || d.At.Before(oldest) {
					oldest = d.At
				}
			}
		}
		r.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(mDecisions, prometheus.GaugeValue, float64(pending), r.cfg.Name)
		if pending > 0 {
			ch <- prometheus.MustNewConstMetric(mDecisionOldest, prometheus.GaugeValue, float64(oldest.UnixMilli())/1000, r.cfg.Name)
		}
		// Every runbook action, so a rate over it is defined from the start.
		for _, k := range []actuator.Kind{actuator.ShiftAway, actuator.EndShift, actuator.ExcludeZone, actuator.IncludeZone, actuator.RemoveExtra} {
			s.failures.mu.Lock()
			v := s.failures.n[[2]string{r.cfg.Name, string(k)}]
			s.failures.mu.Unlock()
			ch <- prometheus.MustNewConstMetric(mActionFailures, prometheus.CounterValue, float64(v), r.cfg.Name, string(k))
		}
	}
}
