package scenario

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/internal/duration"
	"github.com/grayzone/grayzone/internal/yamlfield"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/telemetry/operation"
)

// Error is one problem in a scenario file. Parse returns the first one, in
// document order, as an *Error; its Path names the key, e.g.
// "faults[0].percent", and is empty for problems with the file as a whole
// (syntax, empty file).
type Error = yamlfield.Error

// Limits of the format. MaxInstancesPerZone is not in the contract; it keeps
// an absurd count from turning into millions of servers or slice entries.
const (
	MinDuration         = 10 * time.Second
	MaxDuration         = 24 * time.Hour
	MinZones            = config.MinZones
	MaxZones            = config.MaxZones
	MaxInstancesPerZone = 1000
	DefaultSeed         = 1
	DefaultInterval     = 10 * time.Second
	MinInterval         = 100 * time.Millisecond
	DefaultControlPlane = 30 * time.Second
	DefaultRecoveryHold = 60 * time.Second
	shareTolerance      = 1e-9
)

var (
	nameRe = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)
	// instanceRe splits "<zone>-<n>"; n has no leading zero because
	// InstanceID never writes one, so "az-01" could never match an instance.
	instanceRe = regexp.MustCompile(`^(.+)-([1-9][0-9]*)$`)
)

var (
	topKeys      = []string{"version", "name", "description", "seed", "duration", "topology", "load", "canary", "policy", "faults", "expect"}
	topologyKeys = []string{"zones", "instances_per_zone", "database_zone"}
	loadKeys     = []string{"rps", "operations", "steps", "diurnal"}
	diurnalKeys  = []string{"min", "peak_at"}
	stepKeys     = []string{"at", "rps"}
	canaryKeys   = []string{"interval"}
	policyKeys   = []string{"control_plane_after", "recovery_hold", "ramp", "step_hold"}
	faultKeys    = []string{"at", "duration", "kind", "zone", "instance", "region", "percent", "latency", "jitter", "name"}
	expectKeys   = []string{"shift", "control_plane", "recovered_within", "max_failed_ratio", "fail_static"}
	shiftKeys    = []string{"away_from", "within", "from", "one_episode"}
)

// Parse reads and validates one scenario. file only labels errors (and is
// stored in Scenario.File). Every error is a single line,
// FILE:LINE: KEY.PATH: what is wrong, and is the first problem in document
// order.
func Parse(file string, data []byte) (*Scenario, error) {
	p := &parser{Decoder: &yamlfield.Decoder{File: file}}
	root, second, err := p.Document(data, "empty file (expected a scenario: version, name, duration, topology, load, ...)")
	if err != nil {
		return nil, err
	}
	s := p.scenario(root)
	if second != nil {
		p.ErrAt(second.Line, second.Column, "", "only one YAML document is allowed in a scenario file")
	}
	// Checks run in dependency order (topology before faults); Err reports
	// what comes first in the file.
	if err := p.Err(); err != nil {
		return nil, err
	}
	s.Source = append([]byte(nil), data...)
	return s, nil
}

type parser struct {
	*yamlfield.Decoder

	runDuration time.Duration
	durationOK  bool
	zones       []string
	zonesOK     bool // zones is a valid list: references to it can be checked
	counts      map[string]int
}

// positiveDuration reads an optional duration that must be > 0.
func (p *parser) positiveDuration(f yamlfield.Field) (time.Duration, bool) {
	d, ok := p.Duration(f)
	if ok && d <= 0 {
		p.Errorf(f, "%s is out of range (must be > 0)", yamlfield.Show(f.Val.Value))
		return 0, false
	}
	return d, ok
}

func (p *parser) nonNegativeDuration(f yamlfield.Field) (time.Duration, bool) {
	d, ok := p.Duration(f)
	if ok && d < 0 {
		p.Errorf(f, "%s is out of range (must be >= 0)", yamlfield.Show(f.Val.Value))
		return 0, false
	}
	return d, ok
}

// offset reads a time offset into the run: 0 <= at < duration (when the
// run's duration itself is valid; otherwise that error is the one to fix).
func (p *parser) offset(f yamlfield.Field) (time.Duration, bool) {
	d, ok := p.Duration(f)
	if !ok {
		return 0, false
	}
	if d < 0 || (p.durationOK && d >= p.runDuration) {
		if p.durationOK {
			p.Errorf(f, "%s is out of range (0 <= at < duration %s)", yamlfield.Show(f.Val.Value), duration.Format(p.runDuration))
		} else {
			p.Errorf(f, "%s is out of range (must be >= 0)", yamlfield.Show(f.Val.Value))
		}
		return 0, false
	}
	return d, true
}

// zoneRef reads a reference to one of the topology's zones, as serve reads
// its own.
func (p *parser) zoneRef(f yamlfield.Field) (string, bool) {
	return config.ZoneRef(p.Decoder, f, p.zones, p.zonesOK)
}

func (p *parser) scenario(rf yamlfield.Field) *Scenario {
	s := &Scenario{File: p.File, Seed: DefaultSeed}
	if rf.Val == nil || rf.Val.Kind != yaml.MappingNode {
		p.ErrAt(rf.Line, rf.Col, "", "the top level must be a mapping of scenario keys (version, name, duration, ...), got %s", yamlfield.Describe(rf.Val))
		return s
	}
	m, _ := p.Mapping(rf, topKeys)

	if f, ok := p.Require(m, "version"); ok {
		if v, ok := p.Integer(f); ok {
			if v != 1 {
				p.Errorf(f, "%s is not supported (must be 1)", yamlfield.Show(f.Val.Value))
			}
			s.Version = int(v)
		}
	}
	if f, ok := p.Require(m, "name"); ok {
		if v, ok := p.Str(f); ok {
			if !nameRe.MatchString(v) {
				p.Errorf(f, "%s is not a valid name ([a-z0-9-]{1,63})", yamlfield.Show(v))
			}
			s.Name = v
		}
	}
	if f, ok := m.Get("description"); ok {
		// Folded (>) text ends in a newline nobody means.
		d, _ := p.Str(f)
		s.Description = strings.TrimSpace(d)
	}
	if f, ok := m.Get("seed"); ok {
		if v, ok := p.Integer(f); ok {
			s.Seed = v
		}
	}
	if f, ok := p.Require(m, "duration"); ok {
		if d, ok := p.Duration(f); ok {
			if d < MinDuration || d > MaxDuration {
				p.Errorf(f, "%s is out of range (10s <= duration <= 24h)", yamlfield.Show(f.Val.Value))
			} else {
				s.Duration, p.runDuration, p.durationOK = d, d, true
			}
		}
	}
	if f, ok := p.Require(m, "topology"); ok {
		s.Topology = p.topology(f)
	}
	if f, ok := p.Require(m, "load"); ok {
		s.Load = p.load(f)
	}
	s.Canary.Interval = DefaultInterval
	if f, ok := m.Get("canary"); ok {
		p.canary(f, &s.Canary)
	}
	s.Policy = Policy{ControlPlaneAfter: DefaultControlPlane, RecoveryHold: DefaultRecoveryHold}
	if f, ok := m.Get("policy"); ok {
		p.policy(f, &s.Policy)
	}
	if f, ok := m.Get("faults"); ok {
		s.Faults = p.faults(f)
	}
	if f, ok := m.Get("expect"); ok {
		s.Expect = p.expect(f, s.Faults)
	}
	return s
}

func (p *parser) topology(f yamlfield.Field) Topology {
	var t Topology
	m, ok := p.Mapping(f, topologyKeys)
	if !ok {
		return t
	}
	if zf, ok := p.Require(m, "zones"); ok {
		t.Zones, p.zonesOK = p.zoneList(zf)
		p.zones = t.Zones
	}
	if inf, ok := p.Require(m, "instances_per_zone"); ok {
		t.Instances = p.instances(inf)
		p.counts = t.Instances
	}
	if df, ok := m.Get("database_zone"); ok {
		t.DatabaseZone, _ = p.zoneRef(df)
	} else if p.zonesOK {
		t.DatabaseZone = t.Zones[1]
	}
	return t
}

// zoneList reads the topology's zones as serve reads its own.
func (p *parser) zoneList(f yamlfield.Field) ([]string, bool) { return config.ZoneList(p.Decoder, f) }

func (p *parser) instanceCount(f yamlfield.Field) (int, bool) {
	v, ok := p.Integer(f)
	if !ok {
		return 0, false
	}
	if v < 1 || v > MaxInstancesPerZone {
		p.Errorf(f, "%s is out of range (1 <= instances <= %d)", yamlfield.Show(f.Val.Value), MaxInstancesPerZone)
		return 0, false
	}
	return int(v), true
}

// instances reads instances_per_zone, a count for all zones or a map zone ->
// count. The result is nil unless every zone has a valid count.
func (p *parser) instances(f yamlfield.Field) map[string]int {
	n := f.Val
	if yamlfield.IsScalar(n, "!!int") {
		c, ok := p.instanceCount(f)
		if !ok || !p.zonesOK {
			return nil
		}
		out := make(map[string]int, len(p.zones))
		for _, z := range p.zones {
			out[z] = c
		}
		return out
	}
	if n == nil || n.Kind != yaml.MappingNode {
		p.TypeErr(f, "an integer >= 1 or a mapping zone -> integer")
		return nil
	}
	m, _ := p.Mapping(f, nil)
	out := map[string]int{}
	ok := true
	for _, zf := range m.Fields {
		zone := zf.Key
		if !config.ZoneKey(p.Decoder, zf, p.zones, p.zonesOK) {
			ok = false
			continue
		}
		c, good := p.instanceCount(zf)
		ok = ok && good
		out[zone] = c
	}
	if !p.zonesOK {
		return nil
	}
	for _, z := range p.zones {
		if _, given := m.Get(z); !given {
			p.Missing(f, yamlfield.Join(f.Path, z), "required (every zone needs an instance count)")
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return out
}

func (p *parser) load(f yamlfield.Field) Load {
	var l Load
	m, ok := p.Mapping(f, loadKeys)
	if !ok {
		return l
	}
	if rf, ok := p.Require(m, "rps"); ok {
		l.RPS, _ = p.rps(rf)
	}
	if of, ok := m.Get("operations"); ok {
		l.Mix = p.operations(of)
	} else {
		for _, op := range operation.Catalog {
			if op.DefaultMix > 0 {
				l.Mix = append(l.Mix, OperationShare{Operation: op.Name, Share: op.DefaultMix})
			}
		}
	}
	if sf, ok := m.Get("steps"); ok {
		l.Steps = p.steps(sf)
	}
	if df, ok := m.Get("diurnal"); ok {
		if _, steps := m.Get("steps"); steps {
			p.Errorf(df, "conflicts with steps (a load is either stepped or diurnal)")
		} else {
			l.Diurnal = p.diurnal(df, l.RPS)
		}
	}
	return l
}

// diurnal reads load.diurnal: the lowest rate of the day and the time of
// day of the peak (load.rps).
func (p *parser) diurnal(f yamlfield.Field, peak float64) *Diurnal {
	m, ok := p.Mapping(f, diurnalKeys)
	if !ok {
		return nil
	}
	d := &Diurnal{}
	good := true
	if mf, ok := p.Require(m, "min"); ok {
		v, ok := p.rps(mf)
		if ok && peak > 0 && v > peak {
			p.Errorf(mf, "%s is more than load.rps (%g), the day's peak", yamlfield.Show(mf.Val.Value), peak)
			ok = false
		}
		d.Min, good = v, good && ok
	} else {
		good = false
	}
	if pf, ok := p.Require(m, "peak_at"); ok {
		v, ok := p.Duration(pf)
		if ok && (v < 0 || v >= 24*time.Hour) {
			p.Errorf(pf, "%s is out of range (0s <= peak_at < 24h, a time of day)", yamlfield.Show(pf.Val.Value))
			ok = false
		}
		d.PeakAt, good = v, good && ok
	} else {
		good = false
	}
	if !good {
		return nil
	}
	return d
}

func (p *parser) rps(f yamlfield.Field) (float64, bool) {
	v, ok := p.Number(f)
	if ok && v <= 0 {
		p.Errorf(f, "%s is out of range (must be > 0)", yamlfield.Show(f.Val.Value))
		return 0, false
	}
	return v, ok
}

func (p *parser) operations(f yamlfield.Field) []OperationShare {
	m, ok := p.Mapping(f, nil)
	if !ok {
		return nil
	}
	shares := map[string]float64{}
	sum, good := 0.0, true
	for _, of := range m.Fields {
		name := of.Key
		if _, known := operation.Lookup(name); !known {
			p.Errorf(of, "unknown operation (catalogue: %s)", strings.Join(operation.Names(), ", "))
			good = false
			continue
		}
		v, ok := p.Number(of)
		if ok && (v < 0 || v > 1) {
			p.Errorf(of, "%s is out of range (0 <= share <= 1)", yamlfield.Show(of.Val.Value))
			ok = false
		}
		good = good && ok
		shares[name] = v
		sum += v
	}
	if !good {
		return nil
	}
	if math.Abs(sum-1) > shareTolerance {
		p.Errorf(f, "shares sum to %.10g, must sum to 1", sum)
		return nil
	}
	var mix []OperationShare
	for _, op := range operation.Catalog {
		if s := shares[op.Name]; s > 0 {
			mix = append(mix, OperationShare{Operation: op.Name, Share: s})
		}
	}
	return mix
}

func (p *parser) steps(f yamlfield.Field) []Step {
	items, ok := p.List(f, "a list of {at, rps}")
	if !ok {
		return nil
	}
	var steps []Step
	var prev yamlfield.Field
	for _, sf := range items {
		m, ok := p.Mapping(sf, stepKeys)
		if !ok {
			continue
		}
		var st Step
		if af, ok := p.Require(m, "at"); ok {
			if at, ok := p.offset(af); ok {
				if len(steps) > 0 && at <= steps[len(steps)-1].At {
					p.Errorf(af, "%s is not after the previous step's at (%s); steps must be in increasing order", yamlfield.Show(af.Val.Value), yamlfield.Show(prev.Val.Value))
				}
				st.At, prev = at, af
			}
		}
		if rf, ok := p.Require(m, "rps"); ok {
			st.RPS, _ = p.rps(rf)
		}
		steps = append(steps, st)
	}
	return steps
}

func (p *parser) canary(f yamlfield.Field, c *Canary) {
	m, ok := p.Mapping(f, canaryKeys)
	if !ok {
		return
	}
	if inf, ok := m.Get("interval"); ok {
		d, ok := p.Duration(inf)
		if !ok {
			return
		}
		// Below 100ms the canaries would be load, not probes; above the run's
		// duration they would never call.
		if d < MinInterval || (p.durationOK && d > p.runDuration) {
			limit := "duration"
			if p.durationOK {
				limit = "duration " + duration.Format(p.runDuration)
			}
			p.Errorf(inf, "%s is out of range (100ms <= interval <= %s)", yamlfield.Show(inf.Val.Value), limit)
			return
		}
		c.Interval = d
	}
}

func (p *parser) policy(f yamlfield.Field, pol *Policy) {
	m, ok := p.Mapping(f, policyKeys)
	if !ok {
		return
	}
	if cf, ok := m.Get("control_plane_after"); ok {
		pol.ControlPlaneAfter, _ = p.nonNegativeDuration(cf)
	}
	if rf, ok := m.Get("recovery_hold"); ok {
		pol.RecoveryHold, _ = p.nonNegativeDuration(rf)
	}
	if rf, ok := m.Get("ramp"); ok {
		items, ok := p.List(rf, "a list of percentages, e.g. [5, 25, 100]")
		var steps []int
		for _, it := range items {
			if v, ok := p.IntIn(it, 1, 100); ok {
				steps = append(steps, v)
			}
		}
		if ok && len(steps) == len(items) {
			if err := runbook.CheckRamp(steps); err != nil {
				p.Errorf(rf, "%v", err)
			} else {
				pol.Ramp = steps
			}
		}
	}
	if sf, ok := m.Get("step_hold"); ok {
		if d, ok := p.DurationIn(sf, time.Second, time.Hour); ok {
			pol.StepHold = d
		}
	}
}

func (p *parser) faults(f yamlfield.Field) []Fault {
	items, ok := p.List(f, "a list of faults")
	if !ok {
		return nil
	}
	var out []Fault
	named := map[string]bool{}
	for _, ff := range items {
		if fl, ok := p.fault(ff, named); ok {
			out = append(out, fl)
		}
	}
	return out
}

func kindNames() string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

func (p *parser) fault(f yamlfield.Field, named map[string]bool) (Fault, bool) {
	fl := Fault{Line: f.Line}
	m, ok := p.Mapping(f, faultKeys)
	if !ok {
		return fl, false
	}
	if af, ok := p.Require(m, "at"); ok {
		fl.At, _ = p.offset(af)
	}
	if df, ok := m.Get("duration"); ok {
		fl.Duration, _ = p.positiveDuration(df)
	}
	if nf, ok := m.Get("name"); ok {
		if v, ok := p.Str(nf); ok {
			switch {
			case !nameRe.MatchString(v):
				p.Errorf(nf, "%s is not a valid fault name ([a-z0-9-]{1,63})", yamlfield.Show(v))
			case named[v]:
				p.Errorf(nf, "%s is the name of an earlier fault (names must be unique)", yamlfield.Show(v))
			default:
				fl.Name, named[v] = v, true
			}
		}
	}
	kindOK := false
	if kf, ok := p.Require(m, "kind"); ok {
		if k, ok := p.Str(kf); ok {
			if slices.Contains(Kinds, Kind(k)) {
				fl.Kind, kindOK = Kind(k), true
			} else {
				p.Errorf(kf, "%s is not a fault kind (one of %s)", yamlfield.Show(k), kindNames())
			}
		}
	}

	// The target: exactly one of zone, instance, region, checked in the
	// order written so the second one given is the one reported.
	var target *yamlfield.Field
	for _, tf := range m.Fields {
		key := tf.Key
		if key != "zone" && key != "instance" && key != "region" {
			continue
		}
		if target != nil {
			p.Errorf(tf, "conflicts with %s (a fault has exactly one target: zone, instance or region)", target.Key)
			continue
		}
		target = &tf
		switch key {
		case "zone":
			fl.Target.Zone, _ = p.zoneRef(tf)
		case "instance":
			fl.Target.Instance, _ = p.instance(tf)
		case "region":
			if v, ok := p.Boolean(tf); ok {
				if !v {
					p.Errorf(tf, "must be true when given (to target one zone or instance, use zone or instance)")
				}
				fl.Target.Region = v
			}
		}
		if kindOK && fl.Kind == ControlPlaneOutage && key != "region" {
			p.Errorf(tf, "control_plane_outage acts on the instance group, its target must be region: true")
		}
		if kindOK && fl.Kind == CanaryFailure && key == "instance" {
			p.Errorf(tf, "canary_failure acts on a zone's canary calls, its target must be a zone or region: true")
		}
	}
	if target == nil {
		p.Missing(f, f.Path, "no target (exactly one of zone, instance, region is required)")
	}

	needsPercent := fl.Kind == PacketLoss || fl.Kind == Reset || fl.Kind == HTTPError
	needsLatency := fl.Kind == Latency || fl.Kind == Slow
	pf, hasPercent := m.Get("percent")
	switch {
	case kindOK && hasPercent && !needsPercent:
		p.Errorf(pf, "percent not allowed for kind %s (only for packet_loss, reset, http_error)", fl.Kind)
	case kindOK && !hasPercent && needsPercent:
		p.Missing(f, yamlfield.Join(f.Path, "percent"), "required for kind %s", fl.Kind)
	case hasPercent:
		if v, ok := p.Number(pf); ok {
			if v <= 0 || v > 100 {
				p.Errorf(pf, "%s is out of range (0 < percent <= 100)", yamlfield.Show(pf.Val.Value))
			}
			fl.Percent = v
		}
	}
	lf, hasLatency := m.Get("latency")
	latencyOK := false
	switch {
	case kindOK && hasLatency && !needsLatency:
		p.Errorf(lf, "latency not allowed for kind %s (only for latency, slow)", fl.Kind)
	case kindOK && !hasLatency && needsLatency:
		p.Missing(f, yamlfield.Join(f.Path, "latency"), "required for kind %s", fl.Kind)
	case hasLatency:
		fl.Latency, latencyOK = p.positiveDuration(lf)
	}
	if jf, ok := m.Get("jitter"); ok {
		if kindOK && !needsLatency {
			p.Errorf(jf, "jitter not allowed for kind %s (only for latency, slow)", fl.Kind)
		} else if j, ok := p.nonNegativeDuration(jf); ok {
			if latencyOK && j > fl.Latency {
				p.Errorf(jf, "%s is larger than latency (%s)", yamlfield.Show(jf.Val.Value), yamlfield.Show(lf.Val.Value))
			}
			fl.Jitter = j
		}
	}
	return fl, true
}

// instance checks "<zone>-<n>" against the topology: the zone must exist and
// have at least n instances.
func (p *parser) instance(f yamlfield.Field) (string, bool) {
	id, ok := p.Str(f)
	if !ok {
		return "", false
	}
	sub := instanceRe.FindStringSubmatch(id)
	if sub == nil || !config.ValidZoneID(sub[1]) {
		p.Errorf(f, "%s is not an instance id (<zone>-<n>, n counted from 1)", yamlfield.Show(id))
		return "", false
	}
	if !p.zonesOK {
		return id, true
	}
	zone := sub[1]
	if !slices.Contains(p.zones, zone) {
		p.Errorf(f, "instance %s does not exist (no zone %s; zones: %s)", id, zone, strings.Join(p.zones, ", "))
		return "", false
	}
	if p.counts == nil {
		return id, true
	}
	n, err := strconv.Atoi(sub[2])
	if c := p.counts[zone]; err != nil || n > c {
		p.Errorf(f, "instance %s does not exist (zone %s has %d instances)", id, zone, c)
		return "", false
	}
	return id, true
}

func (p *parser) expect(f yamlfield.Field, faults []Fault) Expect {
	var e Expect
	m, ok := p.Mapping(f, expectKeys)
	if !ok {
		return e
	}
	if sf, ok := m.Get("shift"); ok {
		e.Shift = p.shift(sf, faults)
	}
	if cf, ok := m.Get("control_plane"); ok {
		if v, ok := p.Boolean(cf); ok {
			e.ControlPlane = &v
		}
	}
	if rf, ok := m.Get("recovered_within"); ok {
		e.RecoveredWithin, _ = p.positiveDuration(rf)
	}
	if ff, ok := m.Get("fail_static"); ok {
		if v, ok := p.Boolean(ff); ok {
			e.FailStatic = &v
		}
	}
	if rf, ok := m.Get("max_failed_ratio"); ok {
		if v, ok := p.Number(rf); ok {
			if v < 0 || v > 1 {
				p.Errorf(rf, "%s is out of range (0 <= ratio <= 1)", yamlfield.Show(rf.Val.Value))
			}
			e.MaxFailedRatio = &v
		}
	}
	return e
}

func (p *parser) shift(f yamlfield.Field, faults []Fault) *ExpectShift {
	n := f.Val
	if n != nil && n.Kind == yaml.ScalarNode {
		if n.ShortTag() == "!!str" && n.Value == "none" {
			return &ExpectShift{None: true}
		}
		what := yamlfield.Describe(n)
		if n.ShortTag() == "!!str" {
			what = yamlfield.Show(n.Value)
		}
		p.Errorf(f, "%s is not valid (the word none, or {away_from: ZONE, within: DURATION})", what)
		return nil
	}
	m, ok := p.Mapping(f, shiftKeys)
	if !ok {
		return nil
	}
	es := &ExpectShift{}
	if af, ok := p.Require(m, "away_from"); ok {
		es.AwayFrom, _ = p.zoneRef(af)
	}
	if wf, ok := m.Get("within"); ok {
		es.Within, _ = p.positiveDuration(wf)
	}
	if ff, ok := m.Get("from"); ok {
		if v, ok := p.Str(ff); ok {
			var names []string
			for _, fl := range faults {
				if fl.Name != "" {
					names = append(names, fl.Name)
				}
			}
			switch {
			case len(names) == 0:
				p.Errorf(ff, "no fault is named %s (no fault has a name)", yamlfield.Show(v))
			case !slices.Contains(names, v):
				p.Errorf(ff, "no fault is named %s (names: %s)", yamlfield.Show(v), strings.Join(names, ", "))
			default:
				es.From = v
			}
		}
	}
	if of, ok := m.Get("one_episode"); ok {
		es.OneEpisode, _ = p.Boolean(of)
	}
	return es
}
