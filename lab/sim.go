package lab

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/grayzone/grayzone/lab/fault"
	labreport "github.com/grayzone/grayzone/lab/report"
	"github.com/grayzone/grayzone/lab/sim"
	"github.com/grayzone/grayzone/lab/telemetrypath"
	"github.com/grayzone/grayzone/report"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/operation"
)

// simEpoch is sim mode's virtual start: fixed, so reports are byte-for-byte repeatable.
var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// runSim runs the scenario on the virtual clock.
func runSim(ctx context.Context, o Options, mitigate bool) (labreport.Run, error) {
	_, run, err := simulate(ctx, o, mitigate)
	return run, err
}

// simulate is runSim, with the core it ran.
func simulate(ctx context.Context, o Options, mitigate bool) (*core, labreport.Run, error) {
	sc := o.Scenario
	var (
		c     *core
		err   error
		world *sim.World
		req   report.Requests
		path  *telemetrypath.Path
	)
	plan := fault.NewPlan(sc)
	c, err = newCore(sc, o.Detector, mitigate, true, func() time.Time { return simEpoch.Add(world.Offset()) }, simEpoch, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, labreport.Run{}, err
	}
	prog := newProgress(o.Progress, sc, mitigate, simEpoch)
	world = sim.New(sim.Config{
		Scenario: sc,
		Table:    c.table,
		Start:    simEpoch,
		Observe: func(obs observation.Observation) {
			if err := path.Observe(obs); err != nil {
				o.Log.Error("telemetry path", "err", err)
			}
		},
		Server: func(zone, instance string, op *operation.Operation) sim.ServerCounter {
			return path.Counter(zone, instance, op.Name)
		},
		Tick: func(now time.Time) {
			if err := path.Tick(now); err != nil {
				o.Log.Error("telemetry path", "err", err)
			}
			a := c.tick(ctx, now)
			prog.update(now.Sub(simEpoch), a, c, req)
		},
		Customer: req.Count,
	})
	if err := c.launch(ctx, world, func() bool { return !plan.ControlPlaneDown(world.Offset()) }); err != nil {
		return nil, labreport.Run{}, err
	}
	if path, err = telemetrypath.New(o.Telemetry, c.gate, c.rec, simEpoch); err != nil {
		return nil, labreport.Run{}, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	path.CountEarly(c.every) // the world ticks every c.every from simEpoch
	stopAWS, err := useAWS(ctx, o, c, func() time.Time { return simEpoch.Add(world.Offset()) })
	if err != nil {
		return nil, labreport.Run{}, err
	}
	defer stopAWS()
	c.path = servePath(o)
	world.SetTickEvery(c.every)
	prog.header(ModeSim, "", "")
	elapsed := world.Run(ctx)
	prog.update(elapsed, c.ctrl.Last(), c, req)
	return c, c.run("sim", o.Detector, elapsed, req, ""), nil
}
