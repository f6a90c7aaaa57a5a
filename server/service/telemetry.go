package service

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// drainPerTick bounds the aggregates fed to a resource's engine at one
// tick, so a flood never stretches a tick; the gate's buffer bound drops
// the excess at the door.
const drainPerTick = ingest.DefaultDrainPerTick

// gateLimits are the resource's ingest gate's caps, from its telemetry
// section (its thresholds are the detector's: resource.New).
func gateLimits(rc *config.Resource) ingest.Limits {
	t := rc.Telemetry
	return ingest.Limits{MaxInstances: t.MaxInstances, MaxOperations: t.MaxOperations, MaxPending: t.MaxPending}
}

// took counts what the engine takes, by source, and records it when
// record_observations is on.
func (r *resource) took(aggs []record.Aggregate) {
	r.mu.Lock()
	for i := range aggs {
		r.observed[aggs[i].Key.Source]++
	}
	r.mu.Unlock()
	if r.batches != nil {
		r.batches.add(aggs)
	}
}

// startSources starts the resource's telemetry sources.
func (r *resource) startSources(ctx context.Context, wg *sync.WaitGroup) error {
	for _, sc := range r.cfg.Telemetry.Sources {
		run, err := newSource(sc, r.gate, r.s)
		if err != nil {
			return fmt.Errorf("serve: resource %s: telemetry source %s: %w", r.cfg.Name, sc.Name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && ctx.Err() == nil {
				r.s.log.Error("telemetry source stopped", "resource", r.cfg.Name, "source", sc.Name, "err", err)
			}
		}()
	}
	return nil
}

// IngestAggregates implements api.AggregateIngester: single observations
// and aggregates of one batch pass the gate together, all or nothing.
func (s *Service) IngestAggregates(ctx context.Context, name, source string, obs []observation.Observation, aggs []record.Aggregate) error {
	r, err := s.resource(name)
	if err != nil {
		return err
	}
	all := make([]record.Aggregate, 0, len(aggs)+len(obs))
	all = append(all, aggs...)
	for _, o := range obs {
		all = append(all, record.Single(o))
	}
	return r.gate.Offer(source, all, s.clock.Now())
}

// telemetryStatus is the gate's view for the status API and the dashboard.
func (r *resource) telemetryStatus(now time.Time) []api.TelemetryStatus {
	out := []api.TelemetryStatus{}
	for _, st := range r.gate.Stats() {
		ts := api.TelemetryStatus{Source: st.Source, Accepted: st.Accepted, Requests: st.Requests, Dropped: st.Dropped,
			Rejected: st.Rejected, LastReject: st.LastReject, NewestAgeS: -1}
		if !st.Newest.IsZero() {
			ts.NewestAgeS = max(0, now.Sub(st.Newest).Seconds())
		}
		out = append(out, ts)
	}
	return out
}

var (
	mTelAccepted = prometheus.NewDesc("grayzone_telemetry_accepted_total", "Records (aggregates or single observations) a telemetry source delivered and grayzone admitted.", []string{"resource", "source"}, nil)
	mTelRequests = prometheus.NewDesc("grayzone_telemetry_requests_total", "Requests the admitted records stand for.", []string{"resource", "source"}, nil)
	mTelRejected = prometheus.NewDesc("grayzone_telemetry_rejected_total", "Batches rejected, by reason (invalid, unknown_zone, instance_cap, operation_cap, out_of_window, series_cap); a reason's series appears with its first rejection.", []string{"resource", "source", "reason"}, nil)
	mTelDropped  = prometheus.NewDesc("grayzone_telemetry_dropped_total", "Records dropped because the ingest buffer was full.", []string{"resource", "source"}, nil)
	mTelAge      = prometheus.NewDesc("grayzone_telemetry_newest_age_seconds", "Age of the newest data admitted from the source.", []string{"resource", "source"}, nil)
	mTelPending  = prometheus.NewDesc("grayzone_telemetry_pending", "Aggregates waiting for the engine.", []string{"resource"}, nil)
	mTelCard     = prometheus.NewDesc("grayzone_telemetry_cardinality", "Distinct instances and operations under the caps.", []string{"resource", "kind"}, nil)
)

// collectTelemetry adds the telemetry counters to /metrics.
func (s *Service) collectTelemetry(ch chan<- prometheus.Metric) {
	now := s.clock.Now()
	for _, r := range s.resources {
		name := r.cfg.Name
		for _, st := range r.telemetryStatus(now) {
			ch <- prometheus.MustNewConstMetric(mTelAccepted, prometheus.CounterValue, float64(st.Accepted), name, st.Source)
			ch <- prometheus.MustNewConstMetric(mTelRequests, prometheus.CounterValue, float64(st.Requests), name, st.Source)
			ch <- prometheus.MustNewConstMetric(mTelDropped, prometheus.CounterValue, float64(st.Dropped), name, st.Source)
			// A reason's series appears with its first rejection: zero-filled,
			// the six reasons of every source were a fifth of a fleet's
			// series, all 0 (the status API's telemetry lists them all).
			for _, reason := range ingest.Reasons {
				if n := st.Rejected[reason]; n > 0 {
					ch <- prometheus.MustNewConstMetric(mTelRejected, prometheus.CounterValue, float64(n), name, st.Source, reason)
				}
			}
			if st.NewestAgeS >= 0 {
				ch <- prometheus.MustNewConstMetric(mTelAge, prometheus.GaugeValue, st.NewestAgeS, name, st.Source)
			}
		}
		ch <- prometheus.MustNewConstMetric(mTelPending, prometheus.GaugeValue, float64(r.gate.Pending()), name)
		inst, ops := r.gate.Cardinality()
		ch <- prometheus.MustNewConstMetric(mTelCard, prometheus.GaugeValue, float64(inst), name, "instances")
		ch <- prometheus.MustNewConstMetric(mTelCard, prometheus.GaugeValue, float64(ops), name, "operations")
	}
}
