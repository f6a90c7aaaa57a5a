// Package replay runs grayzone serve's resource assembly (server/resource:
// the ingest gate, engine, runbook and controller) on a virtual clock over
// recorded telemetry — the batch format grayzone serve writes with
// record_observations, an EMF log, or a Prometheus range — and says what
// grayzone would have decided and when, with the detector's explanation, as
// a run report (package report). The same input always gives the same
// report: time comes only from the records, and actions are recorded, never
// carried out. It is an operator's tool over serve's recordings, not part of
// the lab.
package replay

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/report"
	res "github.com/grayzone/grayzone/server/resource"
	"github.com/grayzone/grayzone/telemetry/batch"
	"github.com/grayzone/grayzone/telemetry/emf"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// Input is what a replay runs over, in time order.
type Input struct {
	Name         string // what it came from, for the report
	Resource     string
	Aggregates   []record.Aggregate
	Observations []observation.Observation
}

// Options configure Run.
type Options struct {
	Detect  detect.Config
	Runbook runbook.Policy
	// Tail is how long the replay runs past the last record, so a shift
	// can end (default 2 minutes).
	Tail time.Duration
}

// Run replays in through a fresh resource, assembled as grayzone serve
// assembles one (server/resource: the ingest gate, where a slow count left
// to the receiver is resolved, the controller, the shift model in memory),
// and returns the report.
func Run(ctx context.Context, in Input, o Options) (*report.Report, error) {
	if len(in.Aggregates) == 0 && len(in.Observations) == 0 {
		return nil, errors.New("replay: no records in the input")
	}
	if o.Tail <= 0 {
		o.Tail = 2 * time.Minute
	}
	aggs := slices.Clone(in.Aggregates)
	slices.SortStableFunc(aggs, func(a, b record.Aggregate) int { return a.At.Compare(b.At) })
	obs := slices.Clone(in.Observations)
	slices.SortStableFunc(obs, func(a, b observation.Observation) int { return a.At.Compare(b.At) })
	first, last := bounds(aggs, obs)
	start := first.Truncate(time.Second)
	end := last.Add(o.Tail)
	name := cmp.Or(o.Runbook.Resource, in.Resource, "replay")
	var now time.Time
	var acted []actuator.Action
	asm, err := res.New(res.Config{
		Name:  name,
		Zones: o.Detect.Zones,
		// The whole input is offered; nothing is capped or dropped for want of room.
		Limits:  ingest.Limits{MaxInstances: 1 << 30, MaxOperations: 1 << 30, MaxPending: 1 << 30},
		PerTick: -1,
		Detect:  o.Detect,
		Policy:  o.Runbook,
		// Replay decides; it acts on nothing. Every control-plane action
		// succeeds at once and is recorded; shifts are in the in-memory model.
		Control: actuator.Func(func(_ context.Context, a actuator.Action) error {
			acted = append(acted, a)
			return nil
		}),
		Mitigate: true,
		Inline:   true,
		Now:      func() time.Time { return now },
		Log:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	every := asm.Detect.Resolution
	var timeline []report.Point
	excluded := map[string]bool{}
	for now = start.Add(every); !now.After(end); now = now.Add(every) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// One record at a time: a record the gate refuses (a zone no
		// longer configured) is skipped alone, not with its tick's others.
		for len(aggs) > 0 && aggs[0].At.Before(now) {
			_ = asm.Gate.Offer(source, aggs[:1], now)
			aggs = aggs[1:]
		}
		for len(obs) > 0 && obs[0].At.Before(now) {
			_ = asm.Intake.OfferObservation(source, obs[0])
			obs = obs[1:]
		}
		a := asm.Tick(ctx, now)
		if now.Sub(start)%time.Second < every {
			for _, act := range acted {
				switch act.Kind {
				case actuator.ExcludeZone:
					excluded[act.Zone] = true
				case actuator.IncludeZone:
					delete(excluded, act.Zone)
				}
			}
			acted = acted[:0]
			var ex []string
			for z := range excluded {
				ex = append(ex, z)
			}
			phase, zone := asm.Ctrl.Phase()
			timeline = append(timeline, report.PointOf(now.Sub(start).Truncate(time.Second).Seconds(), string(phase), zone, a, ex))
		}
	}
	r := report.Build(report.Run{Name: "replay of " + in.Name, Mode: "replay", Detector: asm.Detect.Profile, Start: start,
		Planned: end.Sub(start), Elapsed: end.Sub(start), Detections: asm.Ctrl.Detections(), Events: asm.Ctrl.Events(), Timeline: timeline})
	r.Expect = report.Expect{Met: true}
	return r, nil
}

// source is the name replay offers its records to the gate under.
const source = "replay"

func bounds(aggs []record.Aggregate, obs []observation.Observation) (first, last time.Time) {
	set := func(t time.Time) {
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	if len(aggs) > 0 {
		set(aggs[0].At)
		set(aggs[len(aggs)-1].At)
	}
	if len(obs) > 0 {
		set(obs[0].At)
		set(obs[len(obs)-1].At)
	}
	return first, last
}

// ReadBatches reads the batch format (one POST /v1/observations body a
// line, as grayzone serve records with record_observations) for resource.
func ReadBatches(r io.Reader, name, resource string) (Input, error) {
	in := Input{Name: name, Resource: resource}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) // records carry their own at
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		res, obs, aggs, err := batch.Decode(b, far)
		if err != nil {
			return in, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if resource != "" && res != resource {
			continue
		}
		in.Observations = append(in.Observations, obs...)
		in.Aggregates = append(in.Aggregates, aggs...)
	}
	return in, sc.Err()
}

// ReadEMF reads an EMF log; lines without the configured metrics are skipped,
// a malformed line is an error naming it.
func ReadEMF(r io.Reader, name string, names emf.Names, interval time.Duration) (Input, error) {
	in := Input{Name: name}
	agg := emf.Aggregator{Interval: interval, MaxSeries: 1 << 30}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		l, ok, err := names.Parse(sc.Bytes())
		if err != nil {
			return in, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if ok {
			agg.Add(l)
		}
	}
	in.Aggregates = agg.Flush(time.Time{})
	return in, sc.Err()
}

// Open reads a file in the named format (batch or emf).
func Open(format, path, resource string, names emf.Names, interval time.Duration) (Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return Input{}, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	switch format {
	case "batch":
		return ReadBatches(f, path, resource)
	case "emf":
		return ReadEMF(f, path, names, interval)
	}
	return Input{}, fmt.Errorf("replay: unknown format %q (want batch, emf or prometheus)", format)
}
