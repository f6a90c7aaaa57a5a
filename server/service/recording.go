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

// write appends one batch of what the engine took. The batch format has no
// regional aggregate: a regional canary call (one request) is written as
// the single observation it was, its latency the middle of its bucket.
func (l *batchLog) write(aggs []record.Aggregate) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(aggs) == 0 {
		return nil
	}
	b := struct {
		Resource     string                `json:"resource"`
		Observations []batch.ObservationIn `json:"observations,omitempty"`
		Aggregates   []batch.AggregateIn   `json:"aggregates,omitempty"`
	}{Resource: l.resource}
	for _, a := range aggs {
		if a.Regional {
			b.Observations = append(b.Observations, batch.EncodeObservation(regionalCall(a)))
			continue
		}
		b.Aggregates = append(b.Aggregates, batch.EncodeAggregate(a))
	}
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

// regionalCall is the regional canary call a one-request aggregate stands for.
func regionalCall(a record.Aggregate) observation.Observation {
	o := observation.Observation{At: a.At, Source: a.Key.Source, Zone: a.Key.Zone, Instance: a.Key.Instance, Operation: a.Key.Operation, Regional: true}
	switch {
	case a.Faults > 0:
		o.Outcome = observation.Fault
	case a.Errors > 0:
		o.Outcome = observation.Error
	}
	if len(a.Latency) > 0 {
		o.Latency = record.BucketMid(a.Latency[0].Index)
	}
	return o
}
