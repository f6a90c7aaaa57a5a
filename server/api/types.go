// Package api is grayzone serve's HTTP JSON API: the wire types, the
// handlers over a Backend, bearer-token auth, and a client for the CLI.
package api

import (
	"context"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/server/store"
	"github.com/grayzone/grayzone/telemetry/observation"
)

// Backend is what the handlers need from the service. The service
// implements it; handler tests use a fake.
type Backend interface {
	Status(ctx context.Context) (Status, error)
	Alarms(ctx context.Context, resource string) ([]Alarm, error)
	Shifts(ctx context.Context, f shift.ListFilter) ([]shift.Shift, error)
	Shift(ctx context.Context, id string) (shift.Shift, error)
	StartShift(ctx context.Context, req shift.StartRequest) (shift.Shift, error)
	UpdateShift(ctx context.Context, id string, req shift.UpdateRequest) (shift.Shift, error)
	CancelShift(ctx context.Context, id, by string) (shift.Shift, error)
	Audit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error)
	Practices(ctx context.Context, resource string, limit int) ([]store.PracticeRun, error)
	// Ingest takes a validated batch; it fails with shift.ErrNotFound for an
	// unknown resource and shift.ErrInvalid for an unknown zone.
	Ingest(ctx context.Context, resource string, obs []observation.Observation) error
	Decisions(ctx context.Context) ([]Decision, error)
	Approve(ctx context.Context, id, by string) (Decision, error)
	// History is the resource's timeline since the given time (zero: all kept).
	History(ctx context.Context, resource string, since time.Time) (History, error)
}

// Status is GET /v1/status.
type Status struct {
	Now       time.Time        `json:"now"`
	Resources []ResourceStatus `json:"resources"`
	// Notifications is each notification endpoint's delivery (none configured: absent).
	Notifications []DeliveryStatus `json:"notifications,omitempty"`
	// Engine says whether serve's tick loop keeps up (absent from a
	// backend without one).
	Engine *EngineStatus `json:"engine,omitempty"`
}

// EngineStatus is serve's tick loop over its last passes (up to a minute's):
// every resource's detection and runbook run in it, so a loop that falls
// behind detects and acts late.
type EngineStatus struct {
	TickEveryMs float64 `json:"tick_every_ms"` // the loop's period
	Passes      int     `json:"passes"`        // passes the figures are over
	TickP99Ms   float64 `json:"tick_p99_ms"`
	TickMaxMs   float64 `json:"tick_max_ms"`
	LagS        float64 `json:"lag_s"` // how late the last pass started after its tick
	// Behind is set when the loop does not keep up (a pass's p99 longer
	// than its period, or the last pass more than a second late); Why says which.
	Behind bool   `json:"behind"`
	Why    string `json:"why,omitempty"`
}

// DeliveryStatus is one notification endpoint's delivery: what waits in the
// outbox and for how long, and this process's counts.
type DeliveryStatus struct {
	Endpoint   string  `json:"endpoint"`
	Kind       string  `json:"kind"` // alertmanager, webhook
	Pending    int64   `json:"pending"`
	LagSeconds float64 `json:"lag_seconds"` // age of the oldest undelivered event (0: none)
	Delivered  int64   `json:"delivered"`
	Failures   int64   `json:"failures"` // failed attempts, retried or given up
	GaveUp     int64   `json:"gave_up"`
	LastError  string  `json:"last_error,omitempty"`
}

// ResourceStatus is one front-doored resource.
type ResourceStatus struct {
	Name     string `json:"name"`
	Detector string `json:"detector"`
	// Phase is the runbook's phase (idle, shifting, shifted, restoring,
	// ramping, ending) and the zone it concerns.
	Phase     string `json:"phase"`
	PhaseZone string `json:"phase_zone,omitempty"`
	// Returning is, while the runbook gives the shifted zone its traffic
	// back in steps (phase ramping), its weight now, percent of a full
	// zone's ("returning: 25 %"); 0: the shift fully in force.
	Returning   int          `json:"returning_percent,omitempty"`
	ActiveShift *shift.Shift `json:"active_shift,omitempty"`
	Excluded    []string     `json:"excluded"`
	Pending     []string     `json:"pending_actions"`
	Regional    bool         `json:"regional_impact"`
	Isolated    string       `json:"isolated_zone,omitempty"`
	Why         string       `json:"why"`
	Zones       []ZoneStatus `json:"zones"`
	Autoshift   string       `json:"autoshift"` // enabled, disabled, dry_run, approval
	// FailStatic is set while the detector doubts its own view: no new
	// shift starts and none ends automatically.
	FailStatic *FailStatic `json:"fail_static,omitempty"`
	// Telemetry lists the sources that delivered data (aggregates.go).
	Telemetry []TelemetryStatus `json:"telemetry,omitempty"`
}

// ZoneStatus is one zone of a resource.
type ZoneStatus struct {
	Zone         string   `json:"zone"`
	Availability float64  `json:"availability"` // 0..1, server-side, last 10 s
	P99Ms        float64  `json:"p99_ms"`       // -1 with no data
	Requests     int64    `json:"requests"`
	Healthy      bool     `json:"healthy"` // zonal canaries
	Impacted     bool     `json:"impacted"`
	Outlier      bool     `json:"outlier"`
	Contributors int      `json:"contributors"`
	Isolated     bool     `json:"isolated"`
	Shifted      bool     `json:"shifted"`
	Targets      []Target `json:"targets"`
	Silent       bool     `json:"silent,omitempty"` // server-side telemetry stopped while it had been reporting
}

// Target is a front-door backend.
type Target struct {
	ID      string `json:"id"`
	Addr    string `json:"addr"`
	Healthy bool   `json:"healthy"`
}

// Alarm is one alarm's state.
type Alarm struct {
	Resource string `json:"resource"`
	Name     string `json:"name"`
	State    string `json:"state"`
	Reason   string `json:"reason"`
}

// Decision is an autoshift decision awaiting (or given) an operator's approval.
type Decision struct {
	ID         string    `json:"id"`
	Resource   string    `json:"resource"`
	Zone       string    `json:"zone"`
	Why        string    `json:"why"`
	At         time.Time `json:"at"`
	Status     string    `json:"status"` // pending, approved, expired
	ApprovedBy string    `json:"approved_by,omitempty"`
}

// ErrorBody is every error response's body: {"error": "one line"}.
type ErrorBody struct {
	Error string `json:"error"`
}

// StartShiftRequest is the body of POST /v1/shifts. ExpiresIn is a Go
// duration such as "30m" or "2h" (1m..72h).
type StartShiftRequest struct {
	Resource  string `json:"resource"`
	AwayFrom  string `json:"away_from"`
	ExpiresIn string `json:"expires_in"`
	Comment   string `json:"comment,omitempty"`
}

// UpdateShiftRequest is the body of PATCH /v1/shifts/{id}; absent fields are
// left alone, and at least one must be given.
type UpdateShiftRequest struct {
	ExpiresIn *string `json:"expires_in,omitempty"`
	Comment   *string `json:"comment,omitempty"`
}

// Accepted is the 202 response to POST /v1/observations.
type Accepted struct {
	Accepted int `json:"accepted"`
}

// History is GET /v1/history: a resource's recent timeline, one point a
// second, and the spans worth shading on a chart.
type History struct {
	Resource string         `json:"resource"`
	Points   []HistoryPoint `json:"points"`
	Spans    []Span         `json:"spans"`
	// Thresholds are the lines to draw: availability target (0..1) and each
	// operation's latency threshold in ms.
	AvailabilityTarget float64            `json:"availability_target"`
	LatencyThresholds  map[string]float64 `json:"latency_thresholds_ms"`
}

// HistoryPoint is one second of a resource.
type HistoryPoint struct {
	T     int64       `json:"t"` // Unix milliseconds
	Phase string      `json:"phase"`
	Zones []ZonePoint `json:"zones"`
}

// ZonePoint is one zone at one second: server-side and canary views.
type ZonePoint struct {
	Zone               string  `json:"zone"`
	Availability       float64 `json:"availability"`        // server-side, 0..1, last 10 s
	Requests           int64   `json:"requests"`            // server-side requests behind it (0: no data)
	P99Ms              float64 `json:"p99_ms"`              // server-side, -1 with no data
	CanaryAvailability float64 `json:"canary_availability"` // zonal canaries, 0..1, -1 with no data
	CanaryP99Ms        float64 `json:"canary_p99_ms"`       // zonal canaries, -1 with no data
	Healthy            bool    `json:"healthy"`
	Isolated           bool    `json:"isolated"`
	Shifted            bool    `json:"shifted"`
	Excluded           bool    `json:"excluded"`
}

// Span is an interval to shade: a fault (lab), a shift, a control-plane exclusion.
type Span struct {
	Kind  string `json:"kind"` // fault, shift, exclusion, detection, fail_static
	Zone  string `json:"zone"`
	Label string `json:"label"`
	From  int64  `json:"from"`         // Unix milliseconds
	To    *int64 `json:"to,omitempty"` // nil: still in effect
}
