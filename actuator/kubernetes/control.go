// Package kubernetes carries grayzone's actions out on a Kubernetes cluster
// through client-go: the control plane (cordon and taint a zone's nodes, no
// eviction; extra Deployment replicas elsewhere) and a data plane for
// Services without a mesh (EndpointSlices that leave the shifted zone out).
//
// What grayzone changed is recorded on the changed object itself, in
// annotations written by the same Update as the change. A write to the API
// server is atomic per object, so a grayzone killed (-9) between two nodes
// leaves each node either untouched or changed and marked — never changed
// and unmarked — and the next Apply (the runbook retries, and resumes after
// a restart) carries on from there. Undoing reverts only what the marks
// say: a node an operator had cordoned before keeps its cordon.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"github.com/grayzone/grayzone/actuator"
)

const (
	// DefaultZoneLabel is the well-known label of a node's zone.
	DefaultZoneLabel = "topology.kubernetes.io/zone"
	// TaintKey is grayzone's NoSchedule taint on an excluded zone's nodes;
	// its value is the zone.
	TaintKey = "grayzone.io/zone-excluded"
	// AnnotationCordoned marks a node grayzone cordoned (value: the zone).
	// A node that was already unschedulable does not get it.
	AnnotationCordoned = "grayzone.io/cordoned"
	// AnnotationTainted marks a node grayzone tainted (value: the zone).
	AnnotationTainted = "grayzone.io/tainted"
	// AnnotationExtra marks a Deployment grayzone scaled up while a zone was
	// excluded: "ZONE:N", N the replicas it added.
	AnnotationExtra = "grayzone.io/extra-replicas"
)

// Workload is a Deployment whose replicas are raised while a zone is
// excluded, by as many as it runs in that zone, so that the other zones
// carry the full count.
type Workload struct {
	Namespace, Name string
}

func (w Workload) String() string { return w.Namespace + "/" + w.Name }

// ControlOptions configure a Control.
type ControlOptions struct {
	Client Client
	// ZoneLabel is the node label holding the zone (default DefaultZoneLabel).
	ZoneLabel string
	// Workloads are scaled up while a zone is excluded (none: only cordons).
	Workloads []Workload
	// Resync is the informers' resync period (0: none).
	Resync time.Duration
	Log    *slog.Logger
}

// Control is the Kubernetes control plane: ExcludeZone cordons and taints
// the zone's nodes and raises the workloads' replicas; IncludeZone reverts
// what it cordoned and tainted; RemoveExtra takes the added replicas back.
// Nodes are read from an informer's cache; a node that joins an excluded
// zone is excluded as it appears.
type Control struct {
	o     ControlOptions
	nodes corelisters.NodeLister
	pods  map[string]corelisters.PodLister // by namespace
	// informers watch the nodes and the workloads' namespaces' pods.
	informers []cache.SharedIndexInformer
	synced    []cache.InformerSynced
	adopt     sync.Once

	// writes serializes the actuator's node writes, so that an exclusion
	// prompted by an informer event never lands after the inclusion that
	// followed it.
	writes   sync.Mutex
	mu       sync.Mutex
	excluded map[string]bool // zones excluded by this process or found marked at start
}

// NewControl builds the actuator; Start runs its informers.
func NewControl(o ControlOptions) *Control {
	if o.ZoneLabel == "" {
		o.ZoneLabel = DefaultZoneLabel
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	c := &Control{o: o, pods: map[string]corelisters.PodLister{}, excluded: map[string]bool{}}
	ni := newInformer[*corev1.NodeList](o.Client.CoreV1().Nodes(), &corev1.Node{}, o.Resync, o.Client, nil)
	c.nodes = corelisters.NewNodeLister(ni.GetIndexer())
	c.informers = append(c.informers, ni)
	c.synced = append(c.synced, ni.HasSynced)
	_, _ = ni.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.nodeChanged(obj) },
		UpdateFunc: func(_, obj any) { c.nodeChanged(obj) },
	})
	for _, w := range o.Workloads {
		if _, ok := c.pods[w.Namespace]; ok {
			continue
		}
		pi := newInformer[*corev1.PodList](o.Client.CoreV1().Pods(w.Namespace), &corev1.Pod{}, o.Resync, o.Client, nil)
		c.pods[w.Namespace] = corelisters.NewPodLister(pi.GetIndexer())
		c.informers = append(c.informers, pi)
		c.synced = append(c.synced, pi.HasSynced)
	}
	return c
}

// Start runs the informers until ctx ends. It does not wait for them to
// sync: an API server that is down at start delays the first exclusion,
// nothing else.
func (c *Control) Start(ctx context.Context) {
	for _, inf := range c.informers {
		go inf.RunWithContext(ctx)
	}
	go func() { _ = c.waitSynced(ctx) }()
}

// waitSynced waits for the caches, as long as ctx allows.
func (c *Control) waitSynced(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return fmt.Errorf("kubernetes: the informer caches have not synced (API server unreachable?): %w", ctx.Err())
	}
	c.adopt.Do(func() { c.adoptMarks(ctx) })
	return nil
}

// adoptMarks runs once the caches have synced: after a restart (or in the
// replica that takes over), the marks say which zones are still excluded,
// and nodes that joined them in the meantime are excluded now.
func (c *Control) adoptMarks(ctx context.Context) {
	nodes, _ := c.nodes.List(labels.Everything())
	c.mu.Lock()
	for _, n := range nodes {
		if z := n.Annotations[AnnotationTainted]; z != "" {
			c.excluded[z] = true
		}
	}
	c.mu.Unlock()
	c.writes.Lock()
	defer c.writes.Unlock()
	for _, n := range nodes {
		z := n.Labels[c.o.ZoneLabel]
		if c.Excluded(z) && !(n.Spec.Unschedulable && hasTaint(n, "")) {
			if err := c.exclude(ctx, n.Name, z); err != nil {
				c.o.Log.Warn("exclude a node that joined an excluded zone", "node", n.Name, "zone", z, "err", err)
			}
		}
	}
}

// Apply implements actuator.Actuator.
func (c *Control) Apply(ctx context.Context, a actuator.Action) error {
	if a.Zone == "" {
		return fmt.Errorf("kubernetes: %s: no zone", a)
	}
	if err := c.waitSynced(ctx); err != nil {
		return err
	}
	c.writes.Lock()
	defer c.writes.Unlock()
	switch a.Kind {
	case actuator.ExcludeZone:
		c.mu.Lock()
		c.excluded[a.Zone] = true
		c.mu.Unlock()
		if err := c.forNodes(ctx, a.Zone, c.exclude); err != nil {
			return err
		}
		return c.forWorkloads(ctx, a.Zone, c.addExtra)
	case actuator.IncludeZone:
		c.mu.Lock()
		delete(c.excluded, a.Zone)
		c.mu.Unlock()
		return c.forMarkedNodes(ctx, a.Zone, c.include)
	case actuator.RemoveExtra:
		return c.forWorkloads(ctx, a.Zone, c.removeExtra)
	}
	return fmt.Errorf("kubernetes control plane: %s: %w", a, actuator.ErrUnsupported)
}

// Excluded reports whether zone is excluded by this actuator.
func (c *Control) Excluded(zone string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.excluded[zone]
}

// nodeChanged excludes a node that appears in (or moves into) an excluded
// zone: a cluster autoscaler may add nodes there during the exclusion.
// It also learns, after a restart, which zones the marks say are excluded.
func (c *Control) nodeChanged(obj any) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	zone := n.Labels[c.o.ZoneLabel]
	c.mu.Lock()
	excluded := zone != "" && c.excluded[zone]
	c.mu.Unlock()
	if !excluded || (n.Spec.Unschedulable && hasTaint(n, "")) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.writes.Lock()
		defer c.writes.Unlock()
		if !c.Excluded(zone) {
			return // included again meanwhile
		}
		if err := c.exclude(ctx, n.Name, zone); err != nil {
			c.o.Log.Warn("exclude a node that joined an excluded zone", "node", n.Name, "zone", zone, "err", err)
		}
	}()
}

func (c *Control) forNodes(ctx context.Context, zone string, f func(ctx context.Context, node, zone string) error) error {
	nodes, err := c.nodes.List(labels.SelectorFromSet(labels.Set{c.o.ZoneLabel: zone}))
	if err != nil {
		return err
	}
	if len(nodes) == 0 {
		return fmt.Errorf("kubernetes: no node has label %s=%s", c.o.ZoneLabel, zone)
	}
	var errs []error
	for _, n := range nodes {
		if err := f(ctx, n.Name, zone); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// forMarkedNodes visits the nodes grayzone marked for zone, wherever their
// zone label points now.
func (c *Control) forMarkedNodes(ctx context.Context, zone string, f func(ctx context.Context, node, zone string) error) error {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range nodes {
		if n.Annotations[AnnotationCordoned] == zone || n.Annotations[AnnotationTainted] == zone {
			if err := f(ctx, n.Name, zone); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// exclude cordons and taints one node and marks what it changed, in one
// Update; on a conflict it reads the node again and retries.
func (c *Control) exclude(ctx context.Context, name, zone string) error {
	return c.updateNode(ctx, name, func(n *corev1.Node) bool {
		changed := false
		if !n.Spec.Unschedulable {
			n.Spec.Unschedulable = true
			setAnnotation(&n.ObjectMeta, AnnotationCordoned, zone)
			changed = true
		}
		if !hasTaint(n, "") {
			n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: TaintKey, Value: zone, Effect: corev1.TaintEffectNoSchedule})
			setAnnotation(&n.ObjectMeta, AnnotationTainted, zone)
			changed = true
		}
		return changed
	})
}

// include reverts what the marks say grayzone changed, and nothing else.
func (c *Control) include(ctx context.Context, name, zone string) error {
	return c.updateNode(ctx, name, func(n *corev1.Node) bool {
		changed := false
		if n.Annotations[AnnotationCordoned] == zone {
			n.Spec.Unschedulable = false
			delete(n.Annotations, AnnotationCordoned)
			changed = true
		}
		if n.Annotations[AnnotationTainted] == zone {
			n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, func(t corev1.Taint) bool {
				return t.Key == TaintKey && t.Value == zone && t.Effect == corev1.TaintEffectNoSchedule
			})
			delete(n.Annotations, AnnotationTainted)
			changed = true
		}
		return changed
	})
}

func (c *Control) updateNode(ctx context.Context, name string, mutate func(*corev1.Node) bool) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := c.o.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n = n.DeepCopy()
		if !mutate(n) {
			return nil
		}
		_, err = c.o.Client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{FieldManager: "grayzone"})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil // the node is gone: nothing to change or revert
	}
	if err != nil {
		return fmt.Errorf("kubernetes: node %s: %w", name, err)
	}
	return nil
}

// hasTaint reports whether n has grayzone's taint (for zone, or any zone if "").
func hasTaint(n *corev1.Node, zone string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == TaintKey && t.Effect == corev1.TaintEffectNoSchedule && (zone == "" || t.Value == zone) {
			return true
		}
	}
	return false
}

func setAnnotation(m *metav1.ObjectMeta, k, v string) {
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[k] = v
}

func (c *Control) forWorkloads(ctx context.Context, zone string, f func(ctx context.Context, w Workload, zone string) error) error {
	var errs []error
	for _, w := range c.o.Workloads {
		if err := f(ctx, w, zone); err != nil {
			errs = append(errs, fmt.Errorf("kubernetes: deployment %s: %w", w, err))
		}
	}
	return errors.Join(errs...)
}

// addExtra raises the Deployment's replicas by the number of its pods that
// run on the zone's nodes, once per exclusion (the mark says it was done).
func (c *Control) addExtra(ctx context.Context, w Workload, zone string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := c.o.Client.AppsV1().Deployments(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if _, _, ok := parseExtra(d.Annotations[AnnotationExtra]); ok {
			return nil // already raised (for this or an earlier exclusion not yet taken back)
		}
		n, err := c.podsInZone(d, zone)
		if err != nil || n == 0 {
			return err
		}
		d = d.DeepCopy()
		d.Spec.Replicas = ptr(replicas(d) + int32(n))
		setAnnotation(&d.ObjectMeta, AnnotationExtra, zone+":"+strconv.Itoa(n))
		_, err = c.o.Client.AppsV1().Deployments(w.Namespace).Update(ctx, d, metav1.UpdateOptions{FieldManager: "grayzone"})
		return err
	})
}

// removeExtra takes back the replicas the mark says grayzone added. It
// subtracts rather than restoring a saved count, so that a scale by someone
// else during the exclusion is kept.
func (c *Control) removeExtra(ctx context.Context, w Workload, zone string) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := c.o.Client.AppsV1().Deployments(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		z, n, ok := parseExtra(d.Annotations[AnnotationExtra])
		if !ok || z != zone {
			return nil
		}
		d = d.DeepCopy()
		d.Spec.Replicas = ptr(max(replicas(d)-int32(n), 0))
		delete(d.Annotations, AnnotationExtra)
		_, err = c.o.Client.AppsV1().Deployments(w.Namespace).Update(ctx, d, metav1.UpdateOptions{FieldManager: "grayzone"})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// podsInZone counts the Deployment's pods that are scheduled on the zone's
// nodes and not finished.
func (c *Control) podsInZone(d *appsv1.Deployment, zone string) (int, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return 0, err
	}
	pods, err := c.pods[d.Namespace].List(sel)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.DeletionTimestamp != nil {
			continue
		}
		node, err := c.nodes.Get(p.Spec.NodeName)
		if err == nil && node.Labels[c.o.ZoneLabel] == zone {
			n++
		}
	}
	return n, nil
}

func parseExtra(v string) (zone string, n int, ok bool) {
	for i := len(v) - 1; i > 0; i-- {
		if v[i] == ':' {
			n, err := strconv.Atoi(v[i+1:])
			return v[:i], n, err == nil && n > 0
		}
	}
	return "", 0, false
}

func replicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func ptr[T any](v T) *T { return &v }
