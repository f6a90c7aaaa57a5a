package api

import (
	"context"
	"fmt"
	"net/http"
	"regexp"

	"github.com/grayzone/grayzone/telemetry/batch"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// AggregateIngester is implemented by backends that take aggregated records
// (the service does); without it a batch carrying aggregates gets 501.
type AggregateIngester interface {
	// IngestAggregates takes a validated batch of single observations and
	// aggregates, all or nothing, from the named source (batch, middleware,
	// ...). It fails with shift.ErrNotFound for an unknown resource,
	// ingest.ErrRejected for a batch it refuses (unknown zone, cardinality
	// caps) and ingest.ErrFull when its buffer is full.
	IngestAggregates(ctx context.Context, resource, source string, obs []observation.Observation, aggs []record.Aggregate) error
}

// ingestAggregates serves a batch that carries aggregated records (and
// perhaps single observations too), all validated already.
func (h *handler) ingestAggregates(w http.ResponseWriter, r *http.Request, resource string, obs []observation.Observation, aggs []record.Aggregate) {
	ai, ok := h.b.(AggregateIngester)
	if !ok {
		writeError(w, http.StatusNotImplemented, "aggregates: this server takes single observations only")
		return
	}
	source := r.Header.Get(batch.SourceHeader)
	if source == "" {
		source = "batch"
	}
	if !sourceRe.MatchString(source) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s: %q is not a source name ([a-z0-9_-]{1,32})", batch.SourceHeader, source))
		return
	}
	if err := ai.IngestAggregates(r.Context(), resource, source, obs, aggs); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, Accepted{Accepted: len(obs) + len(aggs)})
}

var sourceRe = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// TelemetryStatus is one telemetry source of a resource (GET /v1/status).
type TelemetryStatus struct {
	Source     string            `json:"source"`
	Accepted   uint64            `json:"accepted"` // records admitted
	Requests   uint64            `json:"requests"` // requests they stand for
	Rejected   map[string]uint64 `json:"rejected"` // batches, by reason
	LastReject string            `json:"last_reject,omitempty"`
	Dropped    uint64            `json:"dropped"`
	NewestAgeS float64           `json:"newest_age_s"` // -1: no data yet
}
