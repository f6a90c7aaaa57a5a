package lab

import (
	"context"
	"net/http"

	"errors"
	"fmt"
	"github.com/grayzone/grayzone/server/api"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/lab/console"
	"github.com/grayzone/grayzone/lab/database"
	labreport "github.com/grayzone/grayzone/lab/report"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/report"
)

// Modes of a lab run.
const (
	ModeReal = "real"
	ModeSim  = "sim"
)

// Options configure a lab run.
type Options struct {
	Scenario *scenario.Scenario
	Mode     string // real or sim
	Detector string // detection profile
	Baseline bool   // also run unmitigated
	// Database is a PostgreSQL URL for real mode; empty: a throwaway cluster
	// when PostgreSQL is installed, else the embedded store.
	Database string
	// Progress shows the mitigated run while it goes; nil: nothing.
	Progress *console.Console
	Log      *slog.Logger
	// Listen is where a real-mode run serves its read-only API and, with
	// Dashboard, the dashboard ("" = none; a taken port falls back to a free one).
	Listen    string
	Dashboard func(api.Backend) map[string]http.Handler
	// FrontDoor is the data plane: embedded (default, grayzone's own
	// proxy), haproxy (a real HAProxy, real mode) or arc (ARC zonal shifts
	// through the AWS SDK against the stand-in). ControlPlane is
	// instancegroup (default) or autoscaling (through the stand-in). See planes.go.
	FrontDoor, ControlPlane string
	// Telemetry is the path the instances' server-side numbers take to the
	// engine (telemetrypath.Names; default direct), in either mode.
	Telemetry string
}

// ErrUsage marks errors in the command or its inputs (exit status 2).
var ErrUsage = errors.New("usage")

func (o *Options) validate() error {
	if o.Scenario == nil {
		return fmt.Errorf("%w: no scenario", ErrUsage)
	}
	if o.Mode == "" {
		o.Mode = ModeReal
	}
	if o.Mode != ModeReal && o.Mode != ModeSim {
		return fmt.Errorf("%w: --mode %q: want real or sim", ErrUsage, o.Mode)
	}
	if o.Detector == "" {
		o.Detector = detect.ProfileDefault
	}
	if !slices.Contains(detect.Profiles, o.Detector) {
		return fmt.Errorf("%w: --detector %q: want one of %s", ErrUsage, o.Detector, strings.Join(detect.Profiles, ", "))
	}
	if err := o.validatePlanes(); err != nil {
		return err
	}
	if err := o.validateTelemetry(); err != nil {
		return err
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Run runs the scenario (and, with Baseline, the same scenario unmitigated),
// checks its expectations and returns the report. When ctx is cancelled the
// run stops early and the partial report is returned with ctx's error.
func Run(ctx context.Context, o Options) (*report.Report, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	runOnce := runSim
	if o.Mode == ModeReal {
		db, stop, err := startDatabase(ctx, o)
		if err != nil {
			return nil, err
		}
		defer stop()
		if err := database.Migrate(ctx, db.url); err != nil {
			return nil, fmt.Errorf("lab: prepare the database (%s): %w", db.what, err)
		}
		runOnce = func(ctx context.Context, o Options, mitigate bool) (labreport.Run, error) {
			return runReal(ctx, o, mitigate, db)
		}
	}
	var (
		main, base labreport.Run
		mainErr    error
		baseErr    error
	)
	if o.Baseline && o.Mode == ModeReal {
		// Real time is the scarce thing: run the unmitigated twin beside the
		// mitigated run, each with its own servers, links and front door.
		done := make(chan struct{})
		go func() {
			defer close(done)
			bo := o
			bo.Progress = nil
			base, baseErr = runOnce(ctx, bo, false)
		}()
		main, mainErr = runOnce(ctx, o, true)
		<-done
	} else {
		main, mainErr = runOnce(ctx, o, true)
		if mainErr == nil && o.Baseline && ctx.Err() == nil {
			base, baseErr = runOnce(ctx, o, false)
		}
	}
	if main.Scenario == nil {
		if mainErr == nil {
			mainErr = errors.New("lab: run produced nothing")
		}
		return nil, mainErr
	}
	r := labreport.Build(main)
	if o.Baseline && base.Scenario != nil {
		r.Baseline = &report.Baseline{Requests: base.Requests, Detections: report.Detections(base.Start, base.Detections)}
	}
	r.Check(o.Scenario)
	if mainErr == nil {
		mainErr = baseErr
	}
	if mainErr == nil {
		mainErr = ctx.Err()
	}
	return r, mainErr
}

// syncWriter serialises writes from the run's goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// String returns what was written so far (the writer must be a *bytes.Buffer or fmt.Stringer).
func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.w.(fmt.Stringer); ok {
		return st.String()
	}
	return ""
}
