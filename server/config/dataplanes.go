package config

import (
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/grayzone/grayzone/internal/yamlfield"
)

// Front door types beside the embedded one.
const (
	// FrontDoorHAProxy is a running HAProxy driven through its runtime API.
	FrontDoorHAProxy = "haproxy"
	// FrontDoorXDS is an xDS server (Envoy, proxyless gRPC, and grayzone's
	// own front door as a separate process) publishing the targets by zone.
	FrontDoorXDS = "xds"

	DefaultReconcileInterval = 5 * time.Second
	ShiftStateDrain          = "drain"
	ShiftStateMaint          = "maint"
)

// HAProxy is the front door of type haproxy.
type HAProxy struct {
	// RuntimeAPI is HAProxy's stats socket at admin level: a unix socket
	// path or host:port.
	RuntimeAPI string
	// Backends maps each regional backend to its servers by zone: a shift
	// drains the zone's servers in every one of them.
	Backends          map[string]map[string][]string // backend -> zone -> server names
	ReconcileInterval time.Duration
	ShiftState        string // drain (default) or maint
	// LogListen is a UDP address where serve receives HAProxy's per-request
	// logs (telemetry/haproxylog's format) as server-side observations.
	LogListen string
}

// embeddedOnlyKeys are the front door keys that describe grayzone's own
// proxy; the other types get routing from the proxy they drive.
var (
	embeddedOnlyKeys = append([]string{"regional", "zonal", "targets", "health_check", "record"}, frontdoorLimitKeys...)
	haproxyKeys      = []string{"runtime_api", "backends", "reconcile_interval", "shift_state", "log_listen"}
	xdsKeys          = []string{"listen", "tls", "insecure", "targets", "health_check"}
	arcKeys          = []string{"resource_identifier"}
	// externalFrontdoorKeys are appended to frontdoorKeys; each is checked
	// against the type by externalFrontdoor.
	externalFrontdoorKeys = append(slices.Clone(haproxyKeys), "listen", "tls", "insecure", "resource_identifier", "namespace", "service", "mirror_service")
	// haproxyNameRe is what HAProxy accepts as a proxy or server name.
	haproxyNameRe = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,63}$`)
)

// externalFrontdoor reads a front door of a type other than embedded; it
// reports handled=false for the embedded type, which parse.go reads. ok
// means the derived targets are complete (capacity checks may use them).
func (p *parser) externalFrontdoor(m *yamlfield.Mapping, r *res, fd *FrontDoor) (handled, ok bool, targets yamlfield.Field) {
	own := map[string][]string{FrontDoorHAProxy: haproxyKeys, FrontDoorXDS: xdsKeys, FrontDoorARC: arcKeys, FrontDoorKubernetesSlices: kubeSliceKeys}[fd.Type]
	for _, f := range m.Fields {
		foreign := slices.Contains(externalFrontdoorKeys, f.Key) || own != nil && slices.Contains(embeddedOnlyKeys, f.Key)
		if foreign && !slices.Contains(own, f.Key) {
			p.Errorf(f, "not a key of front door type %s", yamlfield.Quote(fd.Type))
		}
	}
	if fd.Type == FrontDoorARC {
		p.arcFrontDoor(m, fd) // no targets of grayzone's: capacity checks do not apply
		return true, false, targets
	}
	if fd.Type == FrontDoorKubernetesSlices {
		p.kubernetesSlices(m, fd) // the endpoints are the cluster's: capacity checks do not apply
		return true, false, targets
	}
	if fd.Type == FrontDoorXDS {
		if lf, has := p.Require(m, "listen"); has {
			fd.XDSListen, _ = p.listenAddr(lf)
			p.xdsSecurity(m, lf, fd)
		}
		if hf, has := m.Get("health_check"); has {
			p.healthCheck(hf, &fd.HealthCheck)
		}
		tf, has := p.Require(m, "targets")
		if has {
			fd.Targets, ok = p.targets(tf, r)
		}
		return true, ok && has, tf
	}
	if fd.Type != FrontDoorHAProxy {
		return false, false, targets
	}
	h := HAProxy{ReconcileInterval: DefaultReconcileInterval, ShiftState: ShiftStateDrain}
	if af, has := p.Require(m, "runtime_api"); has {
		if v, good := p.Str(af); good {
			if v == "" || strings.ContainsAny(v, " \t\n") {
				p.Errorf(af, "%s is not a unix socket path or host:port", yamlfield.Quote(v))
			}
			h.RuntimeAPI = v
		}
	}
	if f, has := m.Get("reconcile_interval"); has {
		if d, good := p.DurationIn(f, 100*time.Millisecond, time.Hour); good {
			h.ReconcileInterval = d
		}
	}
	if f, has := m.Get("shift_state"); has {
		if v, good := p.Str(f); good {
			if v != ShiftStateDrain && v != ShiftStateMaint {
				p.Errorf(f, "%s: want drain (established connections finish) or maint", yamlfield.Quote(v))
			}
			h.ShiftState = v
		}
	}
	if f, has := m.Get("log_listen"); has {
		h.LogListen, _ = p.hostPort(f, true)
	}
	bf, has := p.Require(m, "backends")
	if has {
		h.Backends, fd.Targets, ok = p.haproxyBackends(bf, r)
	}
	fd.HAProxy = h
	return true, ok && has, bf
}

// haproxyBackends reads backend -> zone -> [server, ...] and derives the
// targets (one per distinct server name in a zone) that capacity checks and
// the detector's min_instances count.
func (p *parser) haproxyBackends(f yamlfield.Field, r *res) (map[string]map[string][]string, []Target, bool) {
	bm, good := p.Mapping(f, nil)
	if !good {
		return nil, nil, false
	}
	if len(bm.Fields) == 0 {
		p.Errorf(f, "no backends (name the regional backend(s) and each zone's servers in them)")
		return nil, nil, false
	}
	ok := true
	out := map[string]map[string][]string{}
	zoneOf := map[string]string{} // server -> zone, across backends
	for _, b := range bm.Fields {
		if !haproxyNameRe.MatchString(b.Key) {
			p.Errorf(b, "%s is not an HAProxy backend name", yamlfield.Quote(b.Key))
			ok = false
			continue
		}
		zm, good := p.Mapping(b, nil)
		if !good {
			ok = false
			continue
		}
		out[b.Key] = map[string][]string{}
		for _, zf := range zm.Fields {
			if !ZoneKey(p.Decoder, zf, r.zones, r.zonesOK) {
				ok = false
				continue
			}
			items, good := p.List(zf, "a list of HAProxy server names")
			if !good {
				ok = false
				continue
			}
			for _, it := range items {
				s, good := p.Str(it)
				switch {
				case !good:
					ok = false
				case !haproxyNameRe.MatchString(s):
					p.Errorf(it, "%s is not an HAProxy server name", yamlfield.Quote(s))
					ok = false
				case slices.Contains(out[b.Key][zf.Key], s):
					p.Errorf(it, "duplicate server %s", yamlfield.Quote(s))
					ok = false
				case zoneOf[s] != "" && zoneOf[s] != zf.Key:
					p.Errorf(it, "server %s is already in zone %s", yamlfield.Quote(s), yamlfield.Quote(zoneOf[s]))
					ok = false
				default:
					out[b.Key][zf.Key] = append(out[b.Key][zf.Key], s)
					zoneOf[s] = zf.Key
				}
			}
		}
	}
	servers := make([]string, 0, len(zoneOf))
	for s := range zoneOf {
		servers = append(servers, s)
	}
	sort.Strings(servers)
	var targets []Target
	for _, s := range servers {
		targets = append(targets, Target{ID: s, Zone: zoneOf[s]})
	}
	return out, targets, ok
}
