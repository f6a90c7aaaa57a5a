package lab

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/grayzone/grayzone/lab/telemetrypath"
	"github.com/grayzone/grayzone/telemetry/emf"
	"github.com/grayzone/grayzone/telemetry/observation"
)

// realEMF is real mode's CloudWatch EMF path: every instance appends the
// workshop application's EMF line for each request it served to a log file,
// as the application does for the CloudWatch agent; the EMF source tails
// that file, aggregates per interval, and offers to the gate the controller
// drains at each tick, as grayzone serve does.
type realEMF struct {
	gated
	dir  string
	stop context.CancelFunc
	done chan error

	mu     sync.Mutex
	log    *os.File
	line   []byte
	closed bool
}

func startRealEMF(ctx context.Context, g gated) (*realEMF, error) {
	dir, err := os.MkdirTemp("", "grayzone-lab-emf-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "app.log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}

	src, err := emf.New(emf.Config{File: path, Interval: telemetrypath.Interval, Sink: g.gate, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	r := &realEMF{gated: g, dir: dir, stop: stop, done: make(chan error, 1), log: f}
	go func() { r.done <- src.Run(sctx) }()
	return r, nil
}

// observe appends the request's line to the application log: one write per
// line, so the tailer never sees half of one from this writer.
func (r *realEMF) observe(o observation.Observation) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.line = append(emf.AppendRequest(r.line[:0], "grayzone-lab", o.At, o.Zone, o.Instance, o.Operation, o.Outcome, o.Latency), '\n')
	if _, err := r.log.Write(r.line); err != nil {
		return fmt.Errorf("lab: emf log: %w", err)
	}
	return nil
}

func (r *realEMF) close() error {
	r.mu.Lock()
	r.closed = true
	err := r.log.Close()
	r.mu.Unlock()
	r.stop()
	if e := <-r.done; e != nil && err == nil {
		err = fmt.Errorf("lab: emf source: %w", e)
	}
	if e := os.RemoveAll(r.dir); e != nil && err == nil {
		err = e
	}
	return err
}
