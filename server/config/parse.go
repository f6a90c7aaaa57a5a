package config

import (
	"math"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/outlier"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/internal/duration"
	"github.com/grayzone/grayzone/internal/yamlfield"
	"github.com/grayzone/grayzone/server/practice"
	"github.com/grayzone/grayzone/telemetry/operation"
)

// Error is one problem in a configuration file. Parse returns the first one,
// in document order, as an *Error; its Path names the key, e.g.
// "resources[0].zones[1]", and is empty for problems with the file as a
// whole (syntax, empty file).
type Error = yamlfield.Error

var (
	nameRe   = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)
	zoneRe   = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	targetRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,63}$`)
	opRe     = regexp.MustCompile(`^[a-z0-9_-]{1,63}$`)
	// tokenRe is RFC 6750's b64token, what fits an Authorization header.
	tokenRe = regexp.MustCompile(`^[A-Za-z0-9._~+/-]+=*$`)
)

var (
	topKeys       = []string{"listen", "data_dir", "store", "store_file", "replica", "tls_cert_file", "tls_key_file", "auth", "resources", "leader_election", "notifications"}
	authKeys      = []string{"tokens_file", "tokens", "open_reads", "metrics_open"}
	resourceKeys  = []string{"name", "zones", "min_capacity", "frontdoor", "operations", "detector", "canaries", "autoshift", "practice", "control_plane", "telemetry"}
	controlKeys   = []string{"type", "exclude_zone", "include_zone", "remove_extra", "timeout", "groups", "zone_label", "workloads", "env"}
	frontdoorKeys = append([]string{"type", "regional", "zonal", "targets", "health_check", "record"}, frontdoorLimitKeys...)
	targetKeys    = []string{"id", "zone", "addr"}
	healthKeys    = []string{"path", "interval", "timeout", "healthy_threshold", "unhealthy_threshold"}
	operationKeys = []string{"latency_threshold"}
	detectorKeys  = []string{"profile", "false_alarm_rate", "min_instances", "outlier", "outlier_threshold"}
	canaryKeys    = []string{"zone", "url", "interval"}
	autoshiftKeys = []string{"enabled", "dry_run", "approval", "min_interval", "expires_in", "control_plane_after", "recovery_hold", "ramp"}
	rampKeys      = []string{"enabled", "steps", "step_hold"}
	practiceKeys  = []string{"enabled", "interval", "duration", "outcome_alarms", "blocking_alarms", "blocked_windows", "blocked_dates"}
)

const emptyMsg = "empty file (expected a serve configuration: listen, data_dir, auth, resources)"

// Parse reads and validates one configuration. file labels errors, is
// stored in Config.File, and is where a relative tokens_file is resolved
// from. Every error is a single line, FILE:LINE: KEY.PATH: what is wrong,
// and is the first problem in document order.
func Parse(file string, data []byte) (*Config, error) {
	// Messages quote other packages' errors (practice windows and dates),
	// which must not break the one-line format.
	p := &parser{Decoder: &yamlfield.Decoder{File: file, CollapseSpace: true}, addrs: map[string]string{}}
	root, second, err := p.Document(data, emptyMsg)
	if err != nil {
		return nil, err
	}
	c := p.config(root)
	if second != nil {
		p.ErrAt(second.Line, second.Column, "", "only one YAML document is allowed in a configuration file")
	}
	// Checks run in dependency order (zones before what refers to them);
	// Err reports what comes first in the file.
	if err := p.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

type parser struct {
	*yamlfield.Decoder
	// addrs maps each listen address to the key that first uses it: two
	// listeners on one address would fail at start, after half started.
	addrs map[string]string
}

// res is what checks inside one resource refer to.
type res struct {
	name    string
	zones   []string
	zonesOK bool // zones is a valid list: references to it can be checked
}

// listenAddr reads a host:port to listen on and claims it, so two
// listeners cannot share it. Port 0 (any free port) is never a conflict.
func (p *parser) listenAddr(f yamlfield.Field) (string, bool) {
	a, ok := p.hostPort(f, false)
	if !ok {
		return "", false
	}
	if _, port, _ := net.SplitHostPort(a); port != "0" {
		if prev, dup := p.addrs[a]; dup {
			p.Errorf(f, "address %s is already used by %s", a, prev)
			return "", false
		}
		p.addrs[a] = f.Path
	}
	return a, true
}

// hostPort checks host:port with a numeric port; a target (needHost) must
// name its host and a non-zero port, a listener may leave the host empty
// (all interfaces) or use port 0.
func (p *parser) hostPort(f yamlfield.Field, needHost bool) (string, bool) {
	a, ok := p.Str(f)
	if !ok {
		return "", false
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		p.Errorf(f, "%s is not a valid address (host:port, e.g. 127.0.0.1:8080)", yamlfield.Quote(a))
		return "", false
	}
	n, err := strconv.Atoi(port)
	lo := 0
	if needHost {
		lo = 1
	}
	if err != nil || n < lo || n > 65535 || strings.HasPrefix(port, "+") {
		p.Errorf(f, "%s: port %s is not a number from %d to 65535", yamlfield.Quote(a), yamlfield.Quote(port), lo)
		return "", false
	}
	if needHost && host == "" {
		p.Errorf(f, "%s has no host (host:port, e.g. 127.0.0.1:9001)", yamlfield.Quote(a))
		return "", false
	}
	if strings.ContainsAny(host, " \t/") {
		p.Errorf(f, "%s is not a valid address (host:port, e.g. 127.0.0.1:8080)", yamlfield.Quote(a))
		return "", false
	}
	return a, true
}

func (p *parser) zoneRef(f yamlfield.Field, r *res) (string, bool) {
	return ZoneRef(p.Decoder, f, r.zones, r.zonesOK)
}

func (p *parser) config(rf yamlfield.Field) *Config {
	c := &Config{File: p.File, Listen: DefaultListen, DataDir: DefaultDataDir, Auth: Auth{OpenReads: true}}
	if rf.Val == nil || rf.Val.Kind != yaml.MappingNode {
		p.ErrAt(rf.Line, rf.Col, "", "the top level must be a mapping (listen, data_dir, auth, resources), got %s", yamlfield.Describe(rf.Val))
		return c
	}
	m, _ := p.Mapping(rf, topKeys)
	if f, ok := m.Get("listen"); ok {
		c.Listen, _ = p.listenAddr(f)
	} else {
		p.addrs[DefaultListen] = "listen (default)"
	}
	if f, ok := m.Get("data_dir"); ok {
		if v, ok := p.Str(f); ok {
			if strings.TrimSpace(v) == "" {
				p.Errorf(f, "must not be empty")
			}
			c.DataDir = v
		}
	}
	p.tls(m, &c.TLS)
	p.replicas(m, c)
	p.notifications(m, c)
	if f, ok := m.Get("auth"); ok {
		p.auth(f, &c.Auth)
	}
	if f, ok := p.Require(m, "resources"); ok {
		c.Resources = p.resources(f)
	}
	c.LeaderElection = defaultLeaderElection()
	if f, ok := m.Get("leader_election"); ok {
		p.leaderElection(f, &c.LeaderElection)
		// A shared store elects its own leader (its lease); with a second
		// election the two could pick different replicas, and then none
		// would act.
		if c.LeaderElection.Type == LeaderElectionKubernetes && (c.Store != "" || c.StoreFile != "") {
			p.Errorf(f, "type %s with a shared store: the store's lease already elects the leader; use one of them",
				yamlfield.Quote(LeaderElectionKubernetes))
		}
	}
	return c
}

func (p *parser) auth(f yamlfield.Field, a *Auth) {
	m, ok := p.Mapping(f, authKeys)
	if !ok {
		return
	}
	if tf, ok := m.Get("tokens_file"); ok {
		if v, ok := p.Str(tf); ok {
			if strings.TrimSpace(v) == "" {
				p.Errorf(tf, "must not be empty (omit it for no tokens file)")
			} else {
				if !filepath.IsAbs(v) {
					v = filepath.Join(filepath.Dir(p.File), v)
				}
				a.TokensFile = v
			}
		}
	}
	if tf, ok := m.Get("tokens"); ok {
		if items, ok := p.List(tf, "a list of tokens"); ok {
			first, names := map[string]int{}, map[string]int{}
			for i, it := range items {
				v, ok := p.Str(it)
				if !ok {
					continue
				}
				t, msg := parseToken(v, "unnamed-inline-"+strconv.Itoa(i+1))
				if msg != "" {
					p.Errorf(it, "%s", msg)
					continue
				}
				if l, dup := first[t.Secret]; dup {
					p.Errorf(it, "duplicate token (first at line %d)", l)
					continue
				}
				if l, dup := names[t.Name]; dup {
					p.Errorf(it, "duplicate token name %s (first at line %d)", yamlfield.Quote(t.Name), l)
					continue
				}
				first[t.Secret], names[t.Name] = it.Line, it.Line
				a.Tokens = append(a.Tokens, t)
			}
		}
	}
	if of, ok := m.Get("open_reads"); ok {
		if v, ok := p.Boolean(of); ok {
			a.OpenReads = v
			_, hasFile := m.Get("tokens_file")
			_, hasInline := m.Get("tokens")
			if !v && !hasFile && !hasInline {
				p.Errorf(of, "false, but no tokens are configured: nothing could use the API (set tokens_file)")
			}
		}
	}
	if mf, ok := m.Get("metrics_open"); ok {
		if v, ok := p.Boolean(mf); ok {
			a.MetricsOpen = &v
		}
	}
}

func (p *parser) resources(f yamlfield.Field) []Resource {
	items, ok := p.List(f, "a list of resources")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		p.Errorf(f, "no resources (at least one is required)")
		return nil
	}
	var out []Resource
	names := map[string]int{}
	for _, it := range items {
		r := p.resource(it, names)
		out = append(out, r)
	}
	return out
}

func (p *parser) resource(f yamlfield.Field, names map[string]int) Resource {
	var r Resource
	m, ok := p.Mapping(f, resourceKeys)
	if !ok {
		return r
	}
	ctx := &res{}
	if nf, ok := p.Require(m, "name"); ok {
		if v, ok := p.Str(nf); ok {
			switch l, dup := names[v]; {
			case !nameRe.MatchString(v):
				p.Errorf(nf, "%s is not a valid name ([a-z0-9-]{1,63})", yamlfield.Quote(v))
			case dup:
				p.Errorf(nf, "duplicate resource name %s (first at line %d)", yamlfield.Quote(v), l)
			default:
				names[v] = nf.Line
			}
			r.Name, ctx.name = v, v
		}
	}
	if zf, ok := p.Require(m, "zones"); ok {
		r.Zones, ctx.zonesOK = p.zoneList(zf)
		ctx.zones = r.Zones
	}
	var capField yamlfield.Field
	hasCap := false
	if cf, ok := m.Get("min_capacity"); ok {
		if v, ok := p.IntIn(cf, 0, 100000); ok {
			r.MinCapacity, capField, hasCap = v, cf, true
		}
	}
	fdOK := false
	var targetsField yamlfield.Field
	if ff, ok := p.Require(m, "frontdoor"); ok {
		r.FrontDoor, fdOK, targetsField = p.frontdoor(ff, ctx)
	}
	r.Operations = defaultOperations()
	if of, ok := m.Get("operations"); ok {
		r.Operations = p.operations(of)
	}
	r.Detector = Detector{Profile: detect.ProfileDefault, FalseAlarmRate: DefaultFalseAlarmRate, MinInstances: DefaultMinInstances}
	var minInstField yamlfield.Field
	hasMinInst := false
	if df, ok := m.Get("detector"); ok {
		minInstField, hasMinInst = p.detector(df, &r.Detector)
	}
	if cf, ok := m.Get("canaries"); ok {
		r.Canaries = p.canaries(cf, ctx)
	}
	r.Autoshift = Autoshift{Enabled: true, MinInterval: DefaultMinInterval, ExpiresIn: DefaultExpiresIn,
		ControlPlaneAfter: DefaultControlPlaneAfter, RecoveryHold: DefaultRecoveryHold}
	if r.FrontDoor.Weighs() {
		r.Autoshift.Ramp = runbook.DefaultRamp
	}
	if af, ok := m.Get("autoshift"); ok {
		p.autoshift(af, &r.Autoshift, r.FrontDoor)
	}
	r.Practice = Practice{Config: practice.Config{Interval: DefaultPracticeInterval, Duration: DefaultPracticeDuration}}
	if pf, ok := m.Get("practice"); ok {
		p.practice(pf, ctx, &r.Practice)
	}
	r.Telemetry = defaultTelemetry()
	if tf, ok := m.Get("telemetry"); ok {
		r.Telemetry = p.telemetry(tf)
	}
	r.ControlPlane = ControlPlane{Type: ControlPlaneNone, Timeout: DefaultControlPlaneTimeout}
	if cf, ok := m.Get("control_plane"); ok {
		p.controlPlane(cf, &r.ControlPlane)
	}

	if hasCap && r.FrontDoor.Type == FrontDoorKubernetesSlices {
		p.Errorf(capField, "not for front door type %s: its endpoints are the cluster's, not known in advance", yamlfield.Quote(FrontDoorKubernetesSlices))
	}

	// Checks across sections, once the targets are known to be valid.
	if !fdOK || !ctx.zonesOK {
		return r
	}
	perZone := map[string]int{}
	for _, t := range r.FrontDoor.Targets {
		perZone[t.Zone]++
	}
	total := len(r.FrontDoor.Targets)
	for _, z := range r.Zones {
		if perZone[z] == 0 {
			p.Missing(targetsField, targetsField.Path, "zone %s has no targets", yamlfield.Quote(z))
			return r
		}
	}
	if hasCap {
		for _, z := range r.Zones {
			if left := total - perZone[z]; r.MinCapacity > left {
				p.Errorf(capField, "%d can never be met: shifting away from %s leaves %d targets", r.MinCapacity, yamlfield.Quote(z), left)
				break
			}
		}
	}
	// A zone with fewer targets than min_instances can never show isolated
	// impact: the detector would watch it fail and never shift.
	for _, z := range r.Zones {
		if n := perZone[z]; n < r.Detector.MinInstances {
			if hasMinInst {
				p.Errorf(minInstField, "%d exceeds the %d target(s) of zone %s: isolated impact could never be detected there", r.Detector.MinInstances, n, yamlfield.Quote(z))
			} else {
				p.Errorf(targetsField, "zone %s has %d target(s), fewer than detector.min_instances (default %d): isolated impact could never be detected there; add targets or set detector.min_instances", yamlfield.Quote(z), n, DefaultMinInstances)
			}
			break
		}
	}
	return r
}

func (p *parser) zoneList(f yamlfield.Field) ([]string, bool) { return ZoneList(p.Decoder, f) }

// ZoneList reads a list of MinZones to MaxZones distinct zone ids
// ([a-z0-9-]{1,32}), every mistake reported at its item: serve's zones and
// the lab's topology are read with it.
func ZoneList(d *yamlfield.Decoder, f yamlfield.Field) ([]string, bool) {
	items, ok := d.List(f, "a list of zone ids")
	if !ok {
		return nil, false
	}
	if c := len(items); c < MinZones || c > MaxZones {
		plural := "s"
		if c == 1 {
			plural = ""
		}
		d.Errorf(f, "%d zone%s given, need %d to %d", c, plural, MinZones, MaxZones)
		ok = false
	}
	var zones []string
	for _, zf := range items {
		z, good := d.Str(zf)
		switch {
		case !good:
			ok = false
		case !ValidZoneID(z):
			d.Errorf(zf, "%s is not a valid zone id ([a-z0-9-]{1,32})", yamlfield.Quote(z))
			ok = false
		case slices.Contains(zones, z):
			d.Errorf(zf, "zone %s is listed twice", yamlfield.Quote(z))
			ok = false
		default:
			zones = append(zones, z)
		}
	}
	return zones, ok
}

// ValidZoneID says whether z is a zone id ([a-z0-9-]{1,32}).
func ValidZoneID(z string) bool { return zoneRe.MatchString(z) }

// ZoneRef reads a value that names one of zones (a target's zone, a
// scenario's fault zone). known false means the zone list itself was
// invalid (already reported): the name is not checked against it.
func ZoneRef(d *yamlfield.Decoder, f yamlfield.Field, zones []string, known bool) (string, bool) {
	z, ok := d.Str(f)
	if !ok {
		return "", false
	}
	if known && !slices.Contains(zones, z) {
		d.Errorf(f, "unknown zone %s (zones: %s)", yamlfield.Quote(z), strings.Join(zones, ", "))
		return "", false
	}
	return z, true
}

// ZoneKey reports a mapping key that should name one of zones (zone ->
// address, zone -> count) and is not; it says whether the key is good.
func ZoneKey(d *yamlfield.Decoder, f yamlfield.Field, zones []string, known bool) bool {
	if known && !slices.Contains(zones, f.Key) {
		d.Errorf(f, "unknown zone (zones: %s)", strings.Join(zones, ", "))
		return false
	}
	return true
}

// frontdoor reads the front door; ok means its targets are complete and
// valid, so capacity can be checked against them.
func (p *parser) frontdoor(f yamlfield.Field, r *res) (fd FrontDoor, ok bool, targets yamlfield.Field) {
	fd.HealthCheck = HealthCheck{Path: DefaultHealthPath, Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout,
		HealthyThreshold: DefaultHealthyThreshold, UnhealthyThreshold: DefaultUnhealthyThreshold}
	m, good := p.Mapping(f, append(slices.Clone(frontdoorKeys), externalFrontdoorKeys...))
	if !good {
		return fd, false, targets
	}
	if tf, ok := p.Require(m, "type"); ok {
		if v, ok := p.Str(tf); ok {
			if !slices.Contains(FrontDoorTypes, v) {
				p.Errorf(tf, "unknown front door type %s (known: %s)", yamlfield.Quote(v), strings.Join(FrontDoorTypes, ", "))
			}
			fd.Type = v
		}
	}
	if handled, ok, tf := p.externalFrontdoor(m, r, &fd); handled {
		return fd, ok, tf
	}
	if rf, ok := p.Require(m, "regional"); ok {
		fd.Regional, _ = p.listenAddr(rf)
	}
	if zf, ok := p.Require(m, "zonal"); ok {
		fd.Zonal = p.zonal(zf, r)
	}
	tf, hasTargets := p.Require(m, "targets")
	if hasTargets {
		fd.Targets, ok = p.targets(tf, r)
	}
	if hf, has := m.Get("health_check"); has {
		p.healthCheck(hf, &fd.HealthCheck)
	}
	fd.Record = true
	if rf, has := m.Get("record"); has {
		if v, ok := p.Boolean(rf); ok {
			fd.Record = v
		}
	}
	p.limits(m, &fd)
	return fd, ok && hasTargets, tf
}

func (p *parser) zonal(f yamlfield.Field, r *res) map[string]string {
	m, ok := p.Mapping(f, nil)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for _, zf := range m.Fields {
		if !ZoneKey(p.Decoder, zf, r.zones, r.zonesOK) {
			continue
		}
		if a, ok := p.listenAddr(zf); ok {
			out[zf.Key] = a
		}
	}
	if r.zonesOK {
		for _, z := range r.zones {
			if _, given := m.Get(z); !given {
				p.Missing(f, yamlfield.Join(f.Path, z), "required (every zone needs a zonal endpoint)")
			}
		}
	}
	return out
}

func (p *parser) targets(f yamlfield.Field, r *res) ([]Target, bool) {
	items, ok := p.List(f, "a list of targets ({id, zone, addr})")
	if !ok {
		return nil, false
	}
	if len(items) == 0 {
		p.Errorf(f, "no targets (each zone needs at least one)")
		return nil, false
	}
	var out []Target
	ids := map[string]int{}
	addrs := map[string]int{}
	for _, it := range items {
		m, good := p.Mapping(it, targetKeys)
		if !good {
			ok = false
			continue
		}
		var t Target
		if idf, good := p.Require(m, "id"); good {
			if v, good := p.Str(idf); good {
				switch l, dup := ids[v]; {
				case !targetRe.MatchString(v):
					p.Errorf(idf, "%s is not a valid target id ([A-Za-z0-9._-]{1,63})", yamlfield.Quote(v))
					ok = false
				case dup:
					p.Errorf(idf, "duplicate target id %s (first at line %d)", yamlfield.Quote(v), l)
					ok = false
				default:
					ids[v] = idf.Line
				}
				t.ID = v
			} else {
				ok = false
			}
		} else {
			ok = false
		}
		if zf, good := p.Require(m, "zone"); good {
			if t.Zone, good = p.zoneRef(zf, r); !good {
				ok = false
			}
		} else {
			ok = false
		}
		if af, good := p.Require(m, "addr"); good {
			if a, good := p.hostPort(af, true); good {
				if l, dup := addrs[a]; dup {
					p.Errorf(af, "duplicate target address %s (first at line %d)", a, l)
					ok = false
				} else if prev, used := p.addrs[a]; used {
					// The front door would proxy to itself.
					p.Errorf(af, "address %s is a listen address (%s)", a, prev)
					ok = false
				} else {
					addrs[a] = af.Line
				}
				t.Addr = a
			} else {
				ok = false
			}
		} else {
			ok = false
		}
		out = append(out, t)
	}
	return out, ok
}

func (p *parser) healthCheck(f yamlfield.Field, h *HealthCheck) {
	m, ok := p.Mapping(f, healthKeys)
	if !ok {
		return
	}
	if pf, ok := m.Get("path"); ok {
		if v, ok := p.Str(pf); ok {
			if u, err := url.Parse(v); err != nil || !strings.HasPrefix(v, "/") || u.Host != "" || strings.ContainsAny(v, " \t#") {
				p.Errorf(pf, "%s is not a URL path (e.g. /health)", yamlfield.Quote(v))
			} else {
				h.Path = v
			}
		}
	}
	if inf, ok := m.Get("interval"); ok {
		if d, ok := p.DurationIn(inf, 100*time.Millisecond, 5*time.Minute); ok {
			h.Interval = d
		}
	}
	if tf, ok := m.Get("timeout"); ok {
		if d, ok := p.DurationIn(tf, time.Millisecond, 5*time.Minute); ok {
			// A check still running when the next is due would pile up.
			if d > h.Interval {
				p.Errorf(tf, "%s is longer than the interval (%s)", yamlfield.Show(tf.Val.Value), duration.Format(h.Interval))
			} else {
				h.Timeout = d
			}
		}
	}
	if hf, ok := m.Get("healthy_threshold"); ok {
		if v, ok := p.IntIn(hf, 1, 10); ok {
			h.HealthyThreshold = v
		}
	}
	if uf, ok := m.Get("unhealthy_threshold"); ok {
		if v, ok := p.IntIn(uf, 1, 10); ok {
			h.UnhealthyThreshold = v
		}
	}
}

func (p *parser) operations(f yamlfield.Field) map[string]time.Duration {
	m, ok := p.Mapping(f, nil)
	if !ok {
		return nil
	}
	if len(m.Fields) == 0 && len(f.Val.Content) == 0 {
		p.Errorf(f, "names no operation (omit operations for the workshop's: %s)", strings.Join(operation.Names(), ", "))
		return nil
	}
	out := map[string]time.Duration{}
	for _, of := range m.Fields {
		if !opRe.MatchString(of.Key) {
			p.Errorf(of, "%s is not a valid operation name ([a-z0-9_-]{1,63})", yamlfield.Quote(of.Key))
			continue
		}
		om, ok := p.Mapping(of, operationKeys)
		if !ok {
			continue
		}
		if tf, ok := p.Require(om, "latency_threshold"); ok {
			if d, ok := p.DurationIn(tf, time.Millisecond, time.Minute); ok {
				out[of.Key] = d
			}
		}
	}
	return out
}

func (p *parser) detector(f yamlfield.Field, d *Detector) (minInst yamlfield.Field, has bool) {
	m, ok := p.Mapping(f, detectorKeys)
	if !ok {
		return yamlfield.Field{}, false
	}
	if pf, ok := m.Get("profile"); ok {
		if v, ok := p.Str(pf); ok {
			if !slices.Contains(detect.Profiles, v) {
				p.Errorf(pf, "unknown profile %s (known: %s)", yamlfield.Quote(v), strings.Join(detect.Profiles, ", "))
			} else {
				d.Profile = v
			}
		}
	}
	if ff, ok := m.Get("false_alarm_rate"); ok {
		if v, ok := p.Number(ff); ok {
			if v <= 0 || v >= 1 {
				p.Errorf(ff, "%s is out of range (0 < rate < 1)", yamlfield.Show(ff.Val.Value))
			} else {
				d.FalseAlarmRate = v
			}
		}
	}
	if of, ok := m.Get("outlier"); ok {
		if v, ok := p.Str(of); ok {
			if meth, err := outlier.ParseMethod(v); err != nil {
				p.Errorf(of, "unknown outlier method %s (known: static, chi-squared, z-score, iqr, mad)", yamlfield.Quote(v))
			} else {
				d.Outlier.Method = meth
			}
		}
	}
	if tf, ok := m.Get("outlier_threshold"); ok {
		if v, ok := p.Number(tf); ok {
			if v <= 0 || math.IsInf(v, 0) {
				p.Errorf(tf, "%s must be a positive number", yamlfield.Show(tf.Val.Value))
			} else if d.Outlier.Method == "" {
				p.Errorf(tf, "needs detector.outlier (the method the threshold is for)")
			} else {
				d.Outlier.Threshold = v
			}
		}
	}
	if mf, ok := m.Get("min_instances"); ok {
		if v, ok := p.IntIn(mf, 1, 1000); ok {
			d.MinInstances = v
			return mf, true
		}
	}
	return yamlfield.Field{}, false
}

func (p *parser) canaries(f yamlfield.Field, r *res) []Canary {
	items, ok := p.List(f, "a list of canaries ({zone, url, interval})")
	if !ok {
		return nil
	}
	var out []Canary
	seen := map[[2]string]int{}
	for _, it := range items {
		m, ok := p.Mapping(it, canaryKeys)
		if !ok {
			continue
		}
		c := Canary{Interval: DefaultCanaryInterval}
		if zf, ok := p.Require(m, "zone"); ok {
			c.Zone, _ = p.zoneRef(zf, r)
		}
		if uf, ok := p.Require(m, "url"); ok {
			if v, ok := p.httpURL(uf, "http://127.0.0.1:8091"); ok {
				k := [2]string{c.Zone, v}
				if l, dup := seen[k]; dup && c.Zone != "" {
					p.Errorf(uf, "duplicate canary for zone %s and this url (first at line %d)", yamlfield.Quote(c.Zone), l)
				}
				seen[k] = it.Line
				c.URL = v
			}
		}
		if inf, ok := m.Get("interval"); ok {
			if d, ok := p.DurationIn(inf, 100*time.Millisecond, time.Hour); ok {
				c.Interval = d
			}
		}
		out = append(out, c)
	}
	return out
}

func (p *parser) autoshift(f yamlfield.Field, a *Autoshift, fd FrontDoor) {
	m, ok := p.Mapping(f, autoshiftKeys)
	if !ok {
		return
	}
	if rf, ok := m.Get("ramp"); ok {
		p.ramp(rf, a, fd)
	}
	for _, b := range []struct {
		key string
		to  *bool
	}{{"enabled", &a.Enabled}, {"dry_run", &a.DryRun}, {"approval", &a.Approval}} {
		if bf, ok := m.Get(b.key); ok {
			if v, ok := p.Boolean(bf); ok {
				*b.to = v
			}
		}
	}
	if a.DryRun && a.Approval {
		af, _ := m.Get("approval")
		p.Errorf(af, "true with dry_run: true, but a dry run acts on nothing, so there is nothing to approve")
	}
	for _, d := range []struct {
		key    string
		to     *time.Duration
		lo, hi time.Duration
	}{
		{"min_interval", &a.MinInterval, 0, 0},
		{"expires_in", &a.ExpiresIn, time.Minute, 72 * time.Hour},
		{"control_plane_after", &a.ControlPlaneAfter, 0, 0},
		{"recovery_hold", &a.RecoveryHold, 0, 0},
	} {
		if df, ok := m.Get(d.key); ok {
			if v, ok := p.DurationIn(df, d.lo, d.hi); ok {
				*d.to = v
			}
		}
	}
}

// ramp parses autoshift.ramp: enabled (default: where the front door can
// weigh), steps (percent of a full zone's weight, increasing, the last 100),
// step_hold.
func (p *parser) ramp(f yamlfield.Field, a *Autoshift, fd FrontDoor) {
	m, ok := p.Mapping(f, rampKeys)
	if !ok {
		return
	}
	enabled, given := fd.Weighs(), false
	if ef, ok := m.Get("enabled"); ok {
		if v, ok := p.Boolean(ef); ok {
			enabled, given = v, true
		}
	}
	steps := runbook.DefaultRamp
	sf, hasSteps := m.Get("steps")
	if hasSteps {
		items, ok := p.List(sf, "a list of percentages, e.g. [5, 25, 100]")
		if !ok {
			return
		}
		steps = nil
		for _, it := range items {
			v, ok := p.IntIn(it, 1, 100)
			if !ok {
				return
			}
			steps = append(steps, v)
		}
		if err := runbook.CheckRamp(steps); err != nil {
			p.Errorf(sf, "%v", err)
			return
		}
		if !given {
			enabled = true
		}
	}
	if hf, ok := m.Get("step_hold"); ok {
		if d, ok := p.DurationIn(hf, time.Second, time.Hour); ok {
			a.StepHold = d
		}
		if !given && !hasSteps {
			enabled = true
		}
	}
	if enabled && !fd.Weighs() {
		p.Errorf(f, "a gradual return needs a front door that can weigh traffic (embedded, haproxy or xds); frontdoor type %s shifts all or nothing, so the recovery test alone decides: remove ramp or set enabled: false", fd.Type)
		return
	}
	a.Ramp = nil
	if enabled {
		a.Ramp = steps
	}
}

func (p *parser) practice(f yamlfield.Field, r *res, pr *Practice) {
	m, ok := p.Mapping(f, practiceKeys)
	if !ok {
		return
	}
	if ef, ok := m.Get("enabled"); ok {
		pr.Enabled, _ = p.Boolean(ef)
	}
	if inf, ok := m.Get("interval"); ok {
		if d, ok := p.DurationIn(inf, time.Hour, 0); ok {
			pr.Interval = d
		}
	}
	if df, ok := m.Get("duration"); ok {
		if d, ok := p.DurationIn(df, time.Minute, 72*time.Hour); ok {
			if d >= pr.Interval {
				p.Errorf(df, "%s is not shorter than the interval (%s)", yamlfield.Show(df.Val.Value), duration.Format(pr.Interval))
			} else {
				pr.Duration = d
			}
		}
	}
	outcome := map[string]bool{}
	if of, ok := m.Get("outcome_alarms"); ok {
		pr.OutcomeAlarms = p.alarmList(of, r, nil)
		for _, a := range pr.OutcomeAlarms {
			outcome[a] = true
		}
	}
	if pr.Enabled && len(pr.OutcomeAlarms) == 0 {
		if _, given := m.Get("outcome_alarms"); !given {
			p.Missing(f, yamlfield.Join(f.Path, "outcome_alarms"), "required when practice is enabled (a run is judged by its outcome alarms)")
		} else if of, _ := m.Get("outcome_alarms"); of.Val.Kind == yaml.SequenceNode && len(of.Val.Content) == 0 {
			p.Errorf(of, "empty, but practice is enabled (a run is judged by its outcome alarms)")
		}
	}
	if bf, ok := m.Get("blocking_alarms"); ok {
		pr.BlockingAlarms = p.alarmList(bf, r, outcome)
	}
	if wf, ok := m.Get("blocked_windows"); ok {
		if items, ok := p.List(wf, `a list of windows ("Day:HH:MM-Day:HH:MM", UTC)`); ok {
			seen := map[practice.Window]int{}
			for _, it := range items {
				v, ok := p.Str(it)
				if !ok {
					continue
				}
				w, err := practice.ParseWindow(v)
				if err != nil {
					p.Errorf(it, "%v", err)
					continue
				}
				if l, dup := seen[w]; dup {
					p.Errorf(it, "duplicate window %s (first at line %d)", w, l)
					continue
				}
				seen[w] = it.Line
				pr.BlockedWindows = append(pr.BlockedWindows, w)
			}
		}
	}
	if df, ok := m.Get("blocked_dates"); ok {
		if items, ok := p.List(df, `a list of dates ("YYYY-MM-DD", UTC)`); ok {
			seen := map[practice.Date]int{}
			for _, it := range items {
				// Unquoted, 2026-12-24 is a YAML timestamp: take its text.
				if !yamlfield.IsScalar(it.Val, "!!str", "!!timestamp") {
					p.TypeErr(it, "a string")
					continue
				}
				v := it.Val.Value
				d, err := practice.ParseDate(v)
				if err != nil {
					p.Errorf(it, "%v", err)
					continue
				}
				if l, dup := seen[d]; dup {
					p.Errorf(it, "duplicate date %s (first at line %d)", d, l)
					continue
				}
				seen[d] = it.Line
				pr.BlockedDates = append(pr.BlockedDates, d)
			}
		}
	}
}

// alarmList reads a list of alarm names of the resource; other holds the
// names of the other list (an alarm cannot both judge and block a run).
func (p *parser) alarmList(f yamlfield.Field, r *res, other map[string]bool) []string {
	items, ok := p.List(f, "a list of alarm names")
	if !ok {
		return nil
	}
	valid := AlarmNames(r.zones)
	var out []string
	for _, it := range items {
		v, ok := p.Str(it)
		if !ok {
			continue
		}
		switch {
		case r.zonesOK && !slices.Contains(valid, v):
			p.Errorf(it, "unknown alarm %s (valid: %s, ...)", yamlfield.Quote(v), strings.Join(valid[:4], ", "))
		case slices.Contains(out, v):
			p.Errorf(it, "duplicate alarm %s", yamlfield.Quote(v))
		case other[v]:
			p.Errorf(it, "alarm %s is also an outcome alarm (an alarm either judges a run or blocks it)", yamlfield.Quote(v))
		default:
			out = append(out, v)
		}
	}
	return out
}

// controlPlane reads the resource's control plane: none, a command per
// action, or kubernetes (kubernetes.go).
func (p *parser) controlPlane(f yamlfield.Field, cp *ControlPlane) {
	m, ok := p.Mapping(f, controlKeys)
	if !ok {
		return
	}
	if tf, ok := p.Require(m, "type"); ok {
		if v, ok := p.Str(tf); ok {
			if !slices.Contains(ControlPlaneTypes, v) {
				p.Errorf(tf, "unknown control plane type %s (known: %s)", yamlfield.Quote(v), strings.Join(ControlPlaneTypes, ", "))
				return
			}
			cp.Type = v
		}
	}
	if tf, ok := m.Get("timeout"); ok {
		if d, ok := p.DurationIn(tf, time.Second, time.Hour); ok {
			cp.Timeout = d
		}
	}
	p.autoScalingGroups(m, cp)
	p.kubernetesControl(m, cp)
	p.commandEnv(m, cp)
	for _, key := range []string{"exclude_zone", "include_zone", "remove_extra"} {
		kf, has := m.Get(key)
		if cp.Type != ControlPlaneCommand {
			if has {
				p.Errorf(kf, "only for type %s", yamlfield.Quote(ControlPlaneCommand))
			}
			continue
		}
		if !has {
			p.Require(m, key) // records "required" against the mapping
			continue
		}
		items, ok := p.List(kf, "a command as a list of strings, e.g. [./asg.sh, exclude]")
		if !ok {
			continue
		}
		if len(items) == 0 {
			p.Errorf(kf, "empty command")
			continue
		}
		var argv []string
		for _, it := range items {
			if v, ok := p.Str(it); ok {
				argv = append(argv, v)
			}
		}
		if cp.Commands == nil {
			cp.Commands = map[string][]string{}
		}
		cp.Commands[key] = argv
	}
}
