package service

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/grayzone/grayzone/telemetry/batch"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// batchLog appends what a resource's engine takes, one batch (in the
// POST /v1/observations format) per tick, for grayzone replay
// (telemetry.record_observations).
type batchLog struct {
	resource string
	mu       sync.Mutex
	f        *os.File
	w        *bufio.Writer
	obs      []observation.Observation
	failed   bool
}

func openBatchLog(dataDir, resource string) (*batchLog, error) {
	path := filepath.Join(dataDir, "observations-"+resource+".jsonl")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, fmt.Errorf("serve: resource %s: record_observations: %w", resource, err)
	}
	return &batchLog{resource: resource, f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

// observe keeps a single observation for the tick's line.
func (l *batchLog) observe(o observation.Observation) {
	l.mu.Lock()
	l.obs = append(l.obs, o)
	l.mu.Unlock()
}

// write appends the tick's batch: its single observations and aggregates.
func (l *batchLog) write(aggs []record.Aggregate) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.obs) == 0 && len(aggs) == 0 {
		return nil
	}
	b := struct {
		Resource     string                `json:"resource"`
		Observations []batch.ObservationIn `json:"observations,omitempty"`
		Aggregates   []batch.AggregateIn   `json:"aggregates,omitempty"`
	}{Resource: l.resource}
	for _, o := range l.obs {
		b.Observations = append(b.Observations, batch.EncodeObservation(o))
	}
	for _, a := range aggs {
		b.Aggregates = append(b.Aggregates, batch.EncodeAggregate(a))
	}
	l.obs = l.obs[:0]
	line, err := json.Marshal(b)
	if err != nil {
		return err
	}
	if _, err := l.w.Write(append(line, '\n')); err != nil {
		return err
	}
	return l.w.Flush()
}

func (l *batchLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.w.Flush()
	return l.f.Close()
}
