// Package scenario reads the lab's scenario files (format version 1, the
// contract in docs/scenario-format.md) strictly: every mistake is reported
// with the file, line and key, and nothing runs.
package scenario

import (
	"fmt"
	"math"
	"time"
)

// Scenario is one parsed, validated scenario. Durations are offsets from the
// start of the run.
type Scenario struct {
	Version     int
	Name        string
	Description string
	Seed        int64
	Duration    time.Duration
	Topology    Topology
	Load        Load
	Canary      Canary
	Policy      Policy
	Faults      []Fault
	Expect      Expect
	// File is where the scenario came from ("builtin:NAME.yaml" for shipped ones).
	File string
	// Source is the file's text, for reports that show the scenario itself.
	Source []byte
}

// Topology is the zones, their instances and where the database lives.
type Topology struct {
	Zones []string
	// Instances maps each zone to its instance count (always set for every zone).
	Instances    map[string]int
	DatabaseZone string
}

// InstanceIDs lists the zone's instance ids, "<zone>-<n>" with n from 1.
func (t Topology) InstanceIDs(zone string) []string {
	n := t.Instances[zone]
	out := make([]string, n)
	for i := range n {
		out[i] = InstanceID(zone, i+1)
	}
	return out
}

// InstanceID names the n-th (from 1) instance of a zone.
func InstanceID(zone string, n int) string { return fmt.Sprintf("%s-%d", zone, n) }

// Load is the customer traffic sent to the regional endpoint.
type Load struct {
	RPS float64
	// Mix is the share of traffic per operation, in operation.Catalog order,
	// only operations with a share > 0.
	Mix   []OperationShare
	Steps []Step
	// Diurnal, when set, makes the rate follow the day instead of Steps: a
	// cosine from Diurnal.Min at the quietest hour to RPS at PeakAt (a time
	// of day; the run starts at 00:00).
	Diurnal *Diurnal
}

// Diurnal is a day-shaped load curve.
type Diurnal struct {
	Min    float64
	PeakAt time.Duration
}

// day is the period of a diurnal load.
const day = 24 * time.Hour

// OperationShare is one operation's share of customer traffic.
type OperationShare struct {
	Operation string
	Share     float64
}

// Step changes the request rate from At on.
type Step struct {
	At  time.Duration
	RPS float64
}

// RPSAt is the customer request rate in force at offset t.
func (l Load) RPSAt(t time.Duration) float64 {
	if d := l.Diurnal; d != nil {
		phase := 2 * math.Pi * float64((t-d.PeakAt)%day) / float64(day)
		return d.Min + (l.RPS-d.Min)*(1+math.Cos(phase))/2
	}
	rps := l.RPS
	for _, s := range l.Steps {
		if t >= s.At {
			rps = s.RPS
		}
	}
	return rps
}

// Canary configures the synthetic callers.
type Canary struct {
	Interval time.Duration
}

// Policy holds the runbook's timings.
type Policy struct {
	ControlPlaneAfter time.Duration
	RecoveryHold      time.Duration
	// Ramp (an addition): the recovered zone's traffic comes back in these
	// steps through the front door's weights (runbook.Policy.Ramp); none:
	// in one step. StepHold: each step's hold (0: RecoveryHold/3).
	Ramp     []int
	StepHold time.Duration
}

// Kind is a fault kind.
type Kind string

const (
	Latency            Kind = "latency"
	PacketLoss         Kind = "packet_loss"
	Blackhole          Kind = "blackhole"
	Reset              Kind = "reset"
	HTTPError          Kind = "http_error"
	Slow               Kind = "slow"
	ControlPlaneOutage Kind = "control_plane_outage"
	// TelemetryLoss: the targeted instances' server-side observations no
	// longer reach grayzone (a collector, an agent or grayzone's own network
	// died); what customers see is unchanged.
	TelemetryLoss Kind = "telemetry_loss"
	// CanaryFailure: grayzone's own zonal canary calls to the targeted
	// zone(s) fail at once, as if grayzone's network to them were cut;
	// customers are unaffected.
	CanaryFailure Kind = "canary_failure"
)

// Kinds lists every fault kind.
var Kinds = []Kind{Latency, PacketLoss, Blackhole, Reset, HTTPError, Slow, ControlPlaneOutage, TelemetryLoss, CanaryFailure}

// OnDBLink reports whether the kind acts on the database link.
func (k Kind) OnDBLink() bool {
	return k == Latency || k == PacketLoss || k == Blackhole || k == Reset
}

// OnInstance reports whether the kind acts in the instance's own handler chain.
func (k Kind) OnInstance() bool { return k == HTTPError || k == Slow }

// Target is exactly one of a zone, an instance or the whole region.
type Target struct {
	Zone     string
	Instance string
	Region   bool
}

func (t Target) String() string {
	switch {
	case t.Region:
		return "region"
	case t.Instance != "":
		return "instance " + t.Instance
	}
	return "zone " + t.Zone
}

// Fault is one injected fault.
type Fault struct {
	At       time.Duration
	Duration time.Duration // 0: until the end of the run
	Kind     Kind
	Target   Target
	Percent  float64 // packet_loss, reset, http_error
	Latency  time.Duration
	Jitter   time.Duration
	// Name, optional and unique in the scenario, lets expect.shift.from
	// time a shift from this fault.
	Name string
	Line int // line in the scenario file, for messages
}

// End is when the fault stops, given the run's duration.
func (f Fault) End(runDuration time.Duration) time.Duration {
	if f.Duration == 0 || f.At+f.Duration > runDuration {
		return runDuration
	}
	return f.At + f.Duration
}

// ActiveAt reports whether the fault is in force at offset t.
func (f Fault) ActiveAt(t, runDuration time.Duration) bool {
	return t >= f.At && t < f.End(runDuration)
}

// Hits reports whether the fault's target covers the instance in zone.
func (f Fault) Hits(zone, instance string) bool {
	switch {
	case f.Target.Region:
		return true
	case f.Target.Instance != "":
		return f.Target.Instance == instance
	}
	return f.Target.Zone == zone
}

// Expect is what the run is checked against; zero value: nothing expected.
type Expect struct {
	Shift           *ExpectShift
	ControlPlane    *bool // control_plane: true/false; nil when not given
	RecoveredWithin time.Duration
	MaxFailedRatio  *float64
	// FailStatic: grayzone failed static at some point of the run (true)
	// or never (false); nil when not given.
	FailStatic *bool
}

// ExpectShift is either "none" or a zone shifted away within a delay.
type ExpectShift struct {
	None     bool
	AwayFrom string
	Within   time.Duration // 0: no bound
	// From names the fault Within counts from ("": the first fault).
	From string
	// OneEpisode: every fault on AwayFrom (or the fault From) is handled by
	// exactly one shift episode, and no shift of the zone ends while the
	// fault is in force (no flapping).
	OneEpisode bool
}
