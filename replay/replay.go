// Package replay runs grayzone's engine, runbook and controller on a virtual
// clock over recorded telemetry — the batch format grayzone serve writes
// with record_observations, an EMF log, or a Prometheus range — and says what
// grayzone would have decided and when, with the detector's explanation, as a
// run report (package report). The same input always gives the same report:
// time comes only from the records, and actions are recorded, never carried
// out. It is an operator's tool over serve's recordings, not part of the lab.
package replay

import (
	"bufio"
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
	"github.com/grayzone/grayzone/engine/autoshift"
	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/report"
	"github.com/grayzone/grayzone/telemetry/batch"
	"github.com/grayzone/grayzone/telemetry/emf"
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

// Run replays in through a fresh engine and returns the report.
func Run(ctx context.Context, in Input, o Options) (*report.Report, error) {
	if len(in.Aggregates) == 0 && len(in.Observations) == 0 {
		return nil, errors.New("replay: no records in the input")
	}
	if o.Tail <= 0 {
		o.Tail = 2 * time.Minute
	}
	eng, err := detect.New(o.Detect)
	if err != nil {
		return nil, err
	}
	aggs := slices.Clone(in.Aggregates)
	slices.SortStableFunc(aggs, func(a, b record.Aggregate) int { return a.At.Compare(b.At) })
	obs := slices.Clone(in.Observations)
	slices.SortStableFunc(obs, func(a, b observation.Observation) int { return a.At.Compare(b.At) })
	first, last := bounds(aggs, obs)
	every := eng.Config().Resolution
	start := first.Truncate(time.Second)
	end := last.Add(o.Tail)
	var acted []actuator.Action
	ctrl := autoshift.New(autoshift.Options{
		Engine:   eng,
		Runbook:  runbook.New(o.Runbook),
		Mitigate: true,
		Log:      slog.New(slog.DiscardHandler),
	})
	var timeline []report.Point
	excluded := map[string]bool{}
	for now := start.Add(every); !now.After(end); now = now.Add(every) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := 0
		for n < len(aggs) && aggs[n].At.Before(now) {
			n++
		}
		ctrl.ObserveAggregates(aggs[:n])
		aggs = aggs[n:]
		for len(obs) > 0 && obs[0].At.Before(now) {
			ctrl.ObserveAggregates([]record.Aggregate{record.Single(obs[0])})
			obs = obs[1:]
		}
		// Replay decides; it acts on nothing. Every action succeeds at once.
		rd := ctrl.Tick(now)
		for _, act := range rd.Actions {
			acted = append(acted, act)
			ctrl.Ack(now, rd.Epoch, act, nil)
		}
		a := rd.Assessment
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
			phase, zone := ctrl.Phase()
			timeline = append(timeline, report.PointOf(now.Sub(start).Truncate(time.Second).Seconds(), string(phase), zone, a, ex))
		}
	}
	r := report.Build(report.Run{Name: "replay of " + in.Name, Mode: "replay", Detector: eng.Config().Profile, Start: start,
		Planned: end.Sub(start), Elapsed: end.Sub(start), Detections: ctrl.Detections(), Events: ctrl.Events(), Timeline: timeline})
	r.Expect = report.Expect{Met: true}
	return r, nil
}

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
