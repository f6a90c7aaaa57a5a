package service

import (
	"net/http"
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/grayzone/grayzone/engine/alarm"
	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/runbook"
)

// metricsHandler exposes grayzone's own health and state in Prometheus'
// format. Values are read at scrape time from the same state the API serves.
func (s *Service) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(goRuntimeMetrics)), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), (*stateCollector)(s), (*planeCollector)(s), (*replicaCollector)(s), (*notifyCollector)(s), s.ticks)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// goRuntimeMetrics are the Go runtime's metrics exposed besides the
// collector's defaults (the memstats, GOGC, GOMEMLIMIT, GOMAXPROCS): what
// says whether garbage collection is what slows serve down at fleet size —
// the live heap after the last collection (go_gc_heap_live_bytes) and the
// CPU the collector took (go_cpu_classes_gc_total_cpu_seconds_total, with
// go_memstats_alloc_bytes_total the allocation rate that paces it).
var goRuntimeMetrics = collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$|^/cpu/classes/gc/total:cpu-seconds$`)}

type stateCollector Service

var (
	mAvail     = prometheus.NewDesc("grayzone_zone_availability_ratio", "Server-side availability over the last 10 s.", []string{"resource", "zone"}, nil)
	mP99       = prometheus.NewDesc("grayzone_zone_latency_p99_seconds", "Server-side p99 latency over the last 10 s (absent with no data).", []string{"resource", "zone"}, nil)
	mHealthy   = prometheus.NewDesc("grayzone_zone_canary_healthy", "1 when the zonal canaries see the zone healthy.", []string{"resource", "zone"}, nil)
	mIsolated  = prometheus.NewDesc("grayzone_zone_isolated_impact", "1 when the detector decides isolated impact in the zone.", []string{"resource", "zone"}, nil)
	mShifted   = prometheus.NewDesc("grayzone_zone_shifted", "1 when the front door sends the zone no customer traffic.", []string{"resource", "zone"}, nil)
	mTarget    = prometheus.NewDesc("grayzone_target_healthy", "1 when the front door's health checks pass for the target.", []string{"resource", "zone", "target"}, nil)
	mAlarm     = prometheus.NewDesc("grayzone_alarm_in_alarm", "1 for each alarm in ALARM; an alarm OK or without data has no series.", []string{"resource", "alarm"}, nil)
	mPhase     = prometheus.NewDesc("grayzone_runbook_phase", "1 for the runbook's current phase (one series per resource).", []string{"resource", "phase"}, nil)
	mReturning = prometheus.NewDesc("grayzone_shift_returning_percent", "While a shifted zone is given its traffic back in steps (runbook phase ramping): its weight, percent of a full zone's.", []string{"resource", "zone"}, nil)
	mPending   = prometheus.NewDesc("grayzone_runbook_pending_actions", "Actions not yet done (in flight or waiting to retry).", []string{"resource"}, nil)
	mObserved  = prometheus.NewDesc("grayzone_observations_total", "Observations ingested.", []string{"resource", "source"}, nil)
	mActive    = prometheus.NewDesc("grayzone_shift_active", "1 while a zonal shift is active.", []string{"resource", "zone", "origin"}, nil)
	mFailStat  = prometheus.NewDesc("grayzone_fail_static", "1 while the detector doubts its own view for the reason (telemetry_lost, canaries_failing): no new shift starts and none ends automatically.", []string{"resource", "reason"}, nil)
	mLeader    = prometheus.NewDesc("grayzone_leader", "1 when this replica leads and acts (a Kubernetes Lease or the PostgreSQL store's lease; always 1 for a single replica).", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := (*Service)(c)
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	ch <- prometheus.MustNewConstMetric(mLeader, prometheus.GaugeValue, b(s.leads()))
	// The status's reads: nothing here waits for a tick in progress, nor holds one up.
	now, active := s.clock.Now(), s.activeShifts()
	for _, r := range s.resources {
		st := r.status(now, active)
		for _, z := range st.Zones {
			ch <- prometheus.MustNewConstMetric(mAvail, prometheus.GaugeValue, z.Availability, st.Name, z.Zone)
			if z.P99Ms >= 0 {
				ch <- prometheus.MustNewConstMetric(mP99, prometheus.GaugeValue, z.P99Ms/1000, st.Name, z.Zone)
			}
			ch <- prometheus.MustNewConstMetric(mHealthy, prometheus.GaugeValue, b(z.Healthy), st.Name, z.Zone)
			ch <- prometheus.MustNewConstMetric(mIsolated, prometheus.GaugeValue, b(z.Isolated), st.Name, z.Zone)
			ch <- prometheus.MustNewConstMetric(mShifted, prometheus.GaugeValue, b(z.Shifted), st.Name, z.Zone)
			for _, t := range z.Targets {
				ch <- prometheus.MustNewConstMetric(mTarget, prometheus.GaugeValue, b(t.Healthy), st.Name, z.Zone, t.ID)
			}
		}
		// One series for the phase the runbook is in, not one per phase
		// valued 0 or 1: at a fleet's size the zeros were most of the
		// exposition (queries read it with == 1 either way).
		ch <- prometheus.MustNewConstMetric(mPhase, prometheus.GaugeValue, 1, st.Name, st.Phase)
		if st.Phase == string(runbook.Ramping) {
			ch <- prometheus.MustNewConstMetric(mReturning, prometheus.GaugeValue, float64(st.Returning), st.Name, st.PhaseZone)
		}
		ch <- prometheus.MustNewConstMetric(mPending, prometheus.GaugeValue, float64(len(st.Pending)), st.Name)
		if st.ActiveShift != nil {
			ch <- prometheus.MustNewConstMetric(mActive, prometheus.GaugeValue, 1, st.Name, st.ActiveShift.AwayFrom, string(st.ActiveShift.Origin))
		}
		for _, reason := range detect.FailStaticReasons {
			ch <- prometheus.MustNewConstMetric(mFailStat, prometheus.GaugeValue, b(st.FailStatic != nil && st.FailStatic.Reason == reason), st.Name, reason)
		}
		for _, al := range r.ctrl.View().Assessment.Alarms.All() {
			// Only alarms in ALARM: a resource has some 20 alarms, nearly
			// always OK, and their zeros were a quarter of a fleet's series.
			if al.State == alarm.Alarm {
				ch <- prometheus.MustNewConstMetric(mAlarm, prometheus.GaugeValue, 1, st.Name, al.Name)
			}
		}
		r.mu.Lock()
		obs := r.observed
		r.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(mObserved, prometheus.CounterValue, float64(obs[0]), st.Name, "server")
		ch <- prometheus.MustNewConstMetric(mObserved, prometheus.CounterValue, float64(obs[1]), st.Name, "canary")
	}
	s.collectTelemetry(ch)
}
