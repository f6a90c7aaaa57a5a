package config

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/grayzone/grayzone/internal/yamlfield"
)

// Kubernetes parts of the format: front door type kubernetes-endpointslices,
// control_plane type kubernetes and leader_election type kubernetes-lease.
// All reach the cluster with the standard client configuration:
// $KUBECONFIG, or the pod's service account.

const (
	// FrontDoorKubernetesSlices is a selector-less Service whose
	// EndpointSlices grayzone writes: a selected Service's endpoints,
	// without the shifted zone's.
	FrontDoorKubernetesSlices = "kubernetes-endpointslices"
	ControlPlaneKubernetes    = "kubernetes"
	DefaultZoneLabel          = "topology.kubernetes.io/zone"

	LeaderElectionNone        = "none"
	LeaderElectionKubernetes  = "kubernetes-lease"
	DefaultLeaseName          = "grayzone"
	DefaultLeaseDuration      = 15 * time.Second
	DefaultLeaseRenewDeadline = 10 * time.Second
	DefaultLeaseRetryPeriod   = 2 * time.Second
)

// KubernetesControl is control_plane type kubernetes.
type KubernetesControl struct {
	// ZoneLabel is the node label that holds a node's zone.
	ZoneLabel string
	// Workloads are Deployments whose replicas are raised while a zone is
	// excluded and lowered again on remove_extra.
	Workloads []Workload
}

// KubernetesSlices is front door type kubernetes-endpointslices.
type KubernetesSlices struct {
	Namespace string
	// Service has a selector; Kubernetes keeps its EndpointSlices.
	Service string
	// MirrorService has none; clients use it, and grayzone owns its
	// EndpointSlices: Service's endpoints, without the shifted zone's.
	MirrorService string
}

// Workload is a Deployment, by namespace and name.
type Workload struct{ Namespace, Name string }

// LeaderElection elects the one replica that decides and acts.
type LeaderElection struct {
	Type                                      string // none or kubernetes-lease
	Namespace, Name                           string // the Lease
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

var (
	kubeSliceKeys   = []string{"namespace", "service", "mirror_service"}
	kubeControlKeys = []string{"zone_label", "workloads"}
	workloadKeys    = []string{"namespace", "deployment"}
	leaderKeys      = []string{"type", "namespace", "name", "lease_duration", "renew_deadline", "retry_period"}
	// dnsLabelRe is a Kubernetes object name (RFC 1123 label).
	dnsLabelRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	// labelKeyRe is a label key: an optional DNS prefix and a name.
	labelKeyRe = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
)

// kubernetesSlices reads a front door of type kubernetes-endpointslices:
// where the two Services are. The endpoints are the cluster's, read as it
// runs, so min_capacity (a count of targets known in advance) cannot apply.
func (p *parser) kubernetesSlices(m *yamlfield.Mapping, fd *FrontDoor) {
	ks := &fd.KubernetesSlices
	for _, key := range kubeSliceKeys {
		dst := map[string]*string{"namespace": &ks.Namespace, "service": &ks.Service, "mirror_service": &ks.MirrorService}[key]
		if vf, ok := p.Require(m, key); ok {
			if v, ok := p.Str(vf); ok {
				if !dnsLabelRe.MatchString(v) {
					p.Errorf(vf, "%s is not a Kubernetes name (lower case letters, digits, -)", yamlfield.Quote(v))
				}
				*dst = v
			}
		}
	}
	if ks.Service != "" && ks.Service == ks.MirrorService {
		f, _ := m.Get("mirror_service")
		p.Errorf(f, "must differ from service (grayzone writes the mirror's EndpointSlices; Kubernetes writes the service's)")
	}
}

// kubernetesControl reads the kubernetes control plane's keys of m.
func (p *parser) kubernetesControl(m *yamlfield.Mapping, cp *ControlPlane) {
	cp.Kubernetes.ZoneLabel = DefaultZoneLabel
	for _, key := range kubeControlKeys {
		if f, has := m.Get(key); has && cp.Type != ControlPlaneKubernetes {
			p.Errorf(f, "only for type %s", yamlfield.Quote(ControlPlaneKubernetes))
		}
	}
	if cp.Type != ControlPlaneKubernetes {
		return
	}
	if f, ok := m.Get("zone_label"); ok {
		if v, ok := p.Str(f); ok {
			if !labelKeyRe.MatchString(v) {
				p.Errorf(f, "%s is not a label key (e.g. topology.kubernetes.io/zone)", yamlfield.Quote(v))
			}
			cp.Kubernetes.ZoneLabel = v
		}
	}
	f, ok := m.Get("workloads")
	if !ok {
		return
	}
	items, ok := p.List(f, "a list of {namespace, deployment}")
	if !ok {
		return
	}
	for _, it := range items {
		wm, ok := p.Mapping(it, workloadKeys)
		if !ok {
			continue
		}
		var w Workload
		for key, dst := range map[string]*string{"namespace": &w.Namespace, "deployment": &w.Name} {
			if vf, ok := p.Require(wm, key); ok {
				if v, ok := p.Str(vf); ok {
					if !dnsLabelRe.MatchString(v) {
						p.Errorf(vf, "%s is not a Kubernetes name (lower case letters, digits, -)", yamlfield.Quote(v))
					}
					*dst = v
				}
			}
		}
		if slices.Contains(cp.Kubernetes.Workloads, w) {
			p.Errorf(it, "duplicate workload %s/%s", w.Namespace, w.Name)
			continue
		}
		cp.Kubernetes.Workloads = append(cp.Kubernetes.Workloads, w)
	}
}

// leaderElection reads leader_election.
func (p *parser) leaderElection(f yamlfield.Field, le *LeaderElection) {
	m, ok := p.Mapping(f, leaderKeys)
	if !ok {
		return
	}
	if tf, ok := p.Require(m, "type"); ok {
		if v, ok := p.Str(tf); ok {
			known := []string{LeaderElectionNone, LeaderElectionKubernetes}
			if !slices.Contains(known, v) {
				p.Errorf(tf, "unknown leader election type %s (known: %s)", yamlfield.Quote(v), strings.Join(known, ", "))
				return
			}
			le.Type = v
		}
	}
	if le.Type != LeaderElectionKubernetes {
		for _, key := range leaderKeys[1:] {
			if kf, has := m.Get(key); has {
				p.Errorf(kf, "only for type %s", yamlfield.Quote(LeaderElectionKubernetes))
			}
		}
		return
	}
	for key, dst := range map[string]*string{"namespace": &le.Namespace, "name": &le.Name} {
		if vf, ok := m.Get(key); ok {
			if v, ok := p.Str(vf); ok {
				if !dnsLabelRe.MatchString(v) {
					p.Errorf(vf, "%s is not a Kubernetes name (lower case letters, digits, -)", yamlfield.Quote(v))
				}
				*dst = v
			}
		}
	}
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{{"lease_duration", &le.LeaseDuration}, {"renew_deadline", &le.RenewDeadline}, {"retry_period", &le.RetryPeriod}} {
		if vf, ok := m.Get(d.key); ok {
			if v, ok := p.DurationIn(vf, 100*time.Millisecond, 10*time.Minute); ok {
				*d.dst = v
			}
		}
	}
	// client-go's own rule: the leader gives up before others may take over.
	if le.RenewDeadline >= le.LeaseDuration {
		p.Errorf(f, "renew_deadline (%s) must be shorter than lease_duration (%s)", le.RenewDeadline, le.LeaseDuration)
	} else if le.RetryPeriod >= le.RenewDeadline {
		p.Errorf(f, "retry_period (%s) must be shorter than renew_deadline (%s)", le.RetryPeriod, le.RenewDeadline)
	}
}

// defaultLeaderElection is leader_election when it is not given.
func defaultLeaderElection() LeaderElection {
	return LeaderElection{Type: LeaderElectionNone, Name: DefaultLeaseName,
		LeaseDuration: DefaultLeaseDuration, RenewDeadline: DefaultLeaseRenewDeadline, RetryPeriod: DefaultLeaseRetryPeriod}
}
