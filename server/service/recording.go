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
	// tick is what the engine took since the last flush: the gate hands it
	// over in runs (its queue's blocks), the file has one line per tick.
	tick batchLine
}

// batchLine is one line of the file: a POST /v1/observations body.
type batchLine struct {
	Resource     string                `json:"resource"`
	Observations []batch.ObservationIn `json:"observations,omitempty"`
	Aggregates   []batch.AggregateIn   `json:"aggregates,omitempty"`
}

func openBatchLog(dataDir, resource string) (*batchLog, error) {
	path := filepath.Join(dataDir, "observations-"+resource+".jsonl")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, fmt.Errorf("serve: resource %s: record_observations: %w", resource, err)
	}
	return &batchLog{resource: resource, f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

// add takes one run of what the engine took; flush writes the tick's line.
// The batch format has no regional aggregate: a regional canary call (one
// request) is written as the single observation it was, its latency the
// middle of its bucket.
func (l *batchLog) add(aggs []record.Aggregate) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range aggs {
		if a.Regional {
			l.tick.Observations = append(l.tick.Observations, batch.EncodeObservation(regionalCall(a)))
			continue
		}
		l.tick.Aggregates = append(l.tick.Aggregates, batch.EncodeAggregate(a))
	}
}

// flush appends the tick's batch as one line, if the engine took anything.
func (l *batchLog) flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tick.Observations)+len(l.tick.Aggregates) == 0 {
		return nil
	}
	l.tick.Resource = l.resource
	line, err := json.Marshal(l.tick)
	clear(l.tick.Observations)
	clear(l.tick.Aggregates)
	l.tick.Observations, l.tick.Aggregates = l.tick.Observations[:0], l.tick.Aggregates[:0]
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
