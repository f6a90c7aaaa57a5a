package kubernetes

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/internal/kubetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.StopShared()
	os.Exit(code)
}

// fixture is a namespace, nodes in three zones and a Deployment's pods on
// them; names carry the test's prefix, since the tests share one cluster.
type fixture struct {
	admin k8s.Interface
	ns    string
	zones []string
	nodes map[string][]string // zone -> node names
}

// seq makes names unique across runs in one process (go test -count=N
// shares the cluster).
var seq atomic.Int64

func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

func newFixture(t *testing.T, cl *kubetest.Cluster, prefix string) *fixture {
	t.Helper()
	prefix = unique(prefix)
	ctx := context.Background()
	f := &fixture{admin: k8s.NewForConfigOrDie(cl.Config(kubetest.Admin)), ns: prefix, nodes: map[string][]string{}}
	must(t, create(ctx, f.admin.CoreV1().Namespaces(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}))
	for _, z := range []string{"a", "b", "c"} {
		zone := prefix + "-" + z
		f.zones = append(f.zones, zone)
		for i := 1; i <= 2; i++ {
			name := fmt.Sprintf("%s-%d", zone, i)
			f.nodes[zone] = append(f.nodes[zone], name)
			must(t, create(ctx, f.admin.CoreV1().Nodes(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name,
				Labels: map[string]string{DefaultZoneLabel: zone}}}))
			// One pod of the workload per node: scheduled by hand, as
			// there is no scheduler here.
			must(t, create(ctx, f.admin.CoreV1().Pods(f.ns), &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "web-" + name, Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{NodeName: name, Containers: []corev1.Container{{Name: "web", Image: "example.invalid/web"}}}}))
		}
	}
	must(t, create(ctx, f.admin.AppsV1().Deployments(f.ns), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr(int32(6)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example.invalid/web"}}}}}}))
	f.grantRBAC(t, prefix)
	return f
}

// grantRBAC binds the grayzone user exactly the rules the chart ships.
func (f *fixture) grantRBAC(t *testing.T, prefix string) {
	ctx := context.Background()
	must(t, create(ctx, f.admin.RbacV1().ClusterRoles(), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: prefix}, Rules: ClusterRules()}))
	must(t, create(ctx, f.admin.RbacV1().ClusterRoleBindings(), &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: prefix},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: prefix},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: kubetest.Grayzone}}}))
	must(t, create(ctx, f.admin.RbacV1().Roles(f.ns), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "grayzone"}, Rules: WorkloadRules()}))
	must(t, create(ctx, f.admin.RbacV1().RoleBindings(f.ns), &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "grayzone"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "grayzone"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: kubetest.Grayzone}}}))
}

type creator[T any] interface {
	Create(ctx context.Context, obj T, o metav1.CreateOptions) (T, error)
}

func create[T any](ctx context.Context, c creator[T], obj T) error {
	_, err := c.Create(ctx, obj, metav1.CreateOptions{})
	return err
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) node(t *testing.T, name string) *corev1.Node {
	t.Helper()
	n, err := f.admin.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	must(t, err)
	return n
}

func (f *fixture) replicas(t *testing.T) int32 {
	t.Helper()
	d, err := f.admin.AppsV1().Deployments(f.ns).Get(context.Background(), "web", metav1.GetOptions{})
	must(t, err)
	return *d.Spec.Replicas
}

// startControl runs a Control as the least-privileged grayzone user.
func startControl(t *testing.T, ctx context.Context, cfgUser k8s.Interface, f *fixture) *Control {
	c := NewControl(ControlOptions{Client: cfgUser, Workloads: []Workload{{Namespace: f.ns, Name: "web"}}})
	c.Start(ctx)
	return c
}

func TestExcludeCordonsTaintsAndIncludeRevertsOnlyItsOwn(t *testing.T) {
	cl := kubetest.Shared(t)
	f := newFixture(t, cl, "cp1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	zone := f.zones[0]
	// Someone else cordoned a-2 before grayzone, and tainted a-1 their own way.
	mine, theirs := f.nodes[zone][0], f.nodes[zone][1]
	n := f.node(t, theirs)
	n.Spec.Unschedulable = true
	_, err := f.admin.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
	must(t, err)
	n = f.node(t, mine)
	n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "example.com/maintenance", Effect: corev1.TaintEffectNoSchedule})
	_, err = f.admin.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
	must(t, err)

	c := startControl(t, ctx, k8s.NewForConfigOrDie(cl.Config(kubetest.Grayzone)), f)
	ex := actuator.Action{Kind: actuator.ExcludeZone, Resource: "web", Zone: zone}
	for i := 0; i < 2; i++ { // Apply is idempotent
		if err := c.Apply(ctx, ex); err != nil {
			t.Fatalf("exclude (attempt %d): %v", i+1, err)
		}
	}
	for _, name := range f.nodes[zone] {
		n := f.node(t, name)
		if !n.Spec.Unschedulable || !hasTaint(n, zone) {
			t.Errorf("%s after exclude: unschedulable=%v taints=%v, want cordoned and tainted", name, n.Spec.Unschedulable, n.Spec.Taints)
		}
	}
	if got := f.node(t, mine).Annotations[AnnotationCordoned]; got != zone {
		t.Errorf("%s: cordon mark = %q, want %q", mine, got, zone)
	}
	if got, ok := f.node(t, theirs).Annotations[AnnotationCordoned]; ok {
		t.Errorf("%s was already cordoned, but grayzone marked it as its own cordon (%q)", theirs, got)
	}
	// (The API server's TaintNodesByCondition gives new nodes a not-ready
	// taint: there are no kubelets here. Only grayzone's are counted.)
	for _, z := range f.zones[1:] {
		for _, name := range f.nodes[z] {
			if n := f.node(t, name); n.Spec.Unschedulable || hasTaint(n, "") || len(n.Annotations) != 0 {
				t.Errorf("%s in zone %s was touched: unschedulable=%v taints=%v annotations=%v", name, z, n.Spec.Unschedulable, n.Spec.Taints, n.Annotations)
			}
		}
	}
	// No eviction: every pod is still there.
	pods, err := f.admin.CoreV1().Pods(f.ns).List(ctx, metav1.ListOptions{})
	must(t, err)
	if len(pods.Items) != 6 {
		t.Errorf("%d pods after exclude, want all 6 (no eviction)", len(pods.Items))
	}
	// The zone ran 2 of web's 6 pods: the other zones get 2 more.
	if got := f.replicas(t); got != 8 {
		t.Errorf("web replicas while excluded = %d, want 6+2", got)
	}

	if err := c.Apply(ctx, actuator.Action{Kind: actuator.IncludeZone, Resource: "web", Zone: zone}); err != nil {
		t.Fatal(err)
	}
	n = f.node(t, mine)
	if n.Spec.Unschedulable || hasTaint(n, "") || len(n.Annotations[AnnotationCordoned]+n.Annotations[AnnotationTainted]) != 0 {
		t.Errorf("%s after include: unschedulable=%v taints=%v annotations=%v, want grayzone's changes gone", mine, n.Spec.Unschedulable, n.Spec.Taints, n.Annotations)
	}
	if !slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == "example.com/maintenance" }) {
		t.Errorf("%s: someone else's taint was removed: %v", mine, n.Spec.Taints)
	}
	if n := f.node(t, theirs); !n.Spec.Unschedulable || hasTaint(n, "") {
		t.Errorf("%s after include: unschedulable=%v taints=%v, want its owner's cordon kept and grayzone's taint gone", theirs, n.Spec.Unschedulable, n.Spec.Taints)
	}
	if got := f.replicas(t); got != 8 {
		t.Errorf("web replicas after include = %d; the extra stays until remove_extra", got)
	}
	for i := 0; i < 2; i++ {
		if err := c.Apply(ctx, actuator.Action{Kind: actuator.RemoveExtra, Resource: "web", Zone: zone}); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.replicas(t); got != 6 {
		t.Errorf("web replicas after remove_extra = %d, want 6", got)
	}
}

// A node that joins an excluded zone (an autoscaler's) is excluded as the
// informer sees it; and a new process (a restart, kill -9) reverts from the
// marks alone.
func TestNodeJoiningExcludedZoneAndRestart(t *testing.T) {
	cl := kubetest.Shared(t)
	f := newFixture(t, cl, "cp2")
	ctx, cancel := context.WithCancel(context.Background())
	zone := f.zones[1]
	gz := k8s.NewForConfigOrDie(cl.Config(kubetest.Grayzone))
	c := startControl(t, ctx, gz, f)
	if err := c.Apply(ctx, actuator.Action{Kind: actuator.ExcludeZone, Zone: zone}); err != nil {
		t.Fatal(err)
	}
	late := zone + "-late"
	must(t, create(ctx, f.admin.CoreV1().Nodes(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: late, Labels: map[string]string{DefaultZoneLabel: zone}}}))
	waitNode(t, f, late, func(n *corev1.Node) bool { return n.Spec.Unschedulable && hasTaint(n, zone) })
	cancel() // the first process is gone

	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	c2 := startControl(t, ctx2, gz, f)
	if err := c2.Apply(ctx2, actuator.Action{Kind: actuator.IncludeZone, Zone: zone}); err != nil {
		t.Fatal(err)
	}
	for _, name := range append(f.nodes[zone], late) {
		if n := f.node(t, name); n.Spec.Unschedulable || hasTaint(n, "") {
			t.Errorf("%s after include by a new process: unschedulable=%v taints=%v", name, n.Spec.Unschedulable, n.Spec.Taints)
		}
	}
}

func waitNode(t *testing.T, f *fixture, name string, ok func(*corev1.Node) bool) {
	t.Helper()
	// The informer acts asynchronously on an external server: wait for the
	// object, with a deadline, rather than sleeping.
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		n, err := f.admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return ok(n), nil
	})
	if err != nil {
		t.Fatalf("node %s: %v", name, err)
	}
}

// The least-privilege user cannot do more than the role allows: deleting a
// node (eviction's bigger sibling) is forbidden.
func TestRoleIsLeastPrivilege(t *testing.T) {
	cl := kubetest.Shared(t)
	f := newFixture(t, cl, "cp3")
	gz := k8s.NewForConfigOrDie(cl.Config(kubetest.Grayzone))
	ctx := context.Background()
	err := gz.CoreV1().Nodes().Delete(ctx, f.nodes[f.zones[0]][0], metav1.DeleteOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("grayzone deleting a node: %v, want Forbidden", err)
	}
	err = gz.PolicyV1().Evictions(f.ns).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "web-" + f.nodes[f.zones[0]][0]}})
	if !apierrors.IsForbidden(err) {
		t.Errorf("grayzone evicting a pod: %v, want Forbidden", err)
	}
}

// An API server that answers 500, or is down, for a minute delays the
// exclusion but not the data-plane shift: the runbook, on its own clock,
// shifts at once and retries the exclusion until the API server is back.
func TestAPIServerOutageDelaysExclusionNotShift(t *testing.T) {
	cl := kubetest.Shared(t)
	for i, fault := range []kubetest.Fault{kubetest.Error, kubetest.Down} {
		t.Run(map[kubetest.Fault]string{kubetest.Error: "500", kubetest.Down: "down"}[fault], func(t *testing.T) {
			f := newFixture(t, cl, fmt.Sprintf("cp4%d", i))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			proxy, err := cl.Proxy(ctx)
			must(t, err)
			cfg := proxy.Config(kubetest.Grayzone)
			cfg.Timeout = 5 * time.Second
			c := startControl(t, ctx, k8s.NewForConfigOrDie(cfg), f)
			zone := f.zones[2]

			var shiftedAt time.Time
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			data := actuator.Func(func(_ context.Context, a actuator.Action) error { return nil })
			planes := actuator.Planes{Data: data, Control: c}
			rb := runbook.New(runbook.Policy{Resource: "web", ControlPlaneAfter: 30 * time.Second, RecoveryHold: time.Hour})
			var excludedAt time.Time
			var failures int
			step := func(now time.Time, iso string) {
				for _, a := range rb.Step(now, runbook.Input{Isolated: iso, Healthy: map[string]bool{}}) {
					actx, acancel := context.WithTimeout(ctx, 10*time.Second)
					err := planes.Apply(actx, a)
					acancel()
					switch {
					case a.Kind == actuator.ShiftAway && err == nil:
						shiftedAt = now
					case a.Kind == actuator.ExcludeZone && err == nil:
						excludedAt = now
					case a.Kind == actuator.ExcludeZone:
						failures++
					}
					rb.Done(now, a, err)
				}
			}
			// The informers synced while the API server was fine; then it fails.
			actx, acancel := context.WithTimeout(ctx, 30*time.Second)
			must(t, c.waitSynced(actx))
			acancel()
			must(t, proxy.SetFault(fault))
			outageEnd := start.Add(90 * time.Second) // from 30s, when exclusion is due, a minute of outage
			for s := 0; s <= 150; s++ {
				now := start.Add(time.Duration(s) * time.Second)
				if now.Equal(outageEnd) {
					must(t, proxy.SetFault(kubetest.Pass))
				}
				step(now, zone)
				if now.Before(outageEnd) {
					for _, name := range f.nodes[zone] {
						if n := f.node(t, name); n.Spec.Unschedulable {
							t.Fatalf("%s cordoned at +%s, during the outage", name, now.Sub(start))
						}
					}
				}
			}
			if !shiftedAt.Equal(start) {
				t.Errorf("data-plane shift at +%s, want at once", shiftedAt.Sub(start))
			}
			if failures < 3 {
				t.Errorf("%d failed exclusion attempts during a minute of outage; the runbook should keep retrying", failures)
			}
			if excludedAt.IsZero() || excludedAt.Before(outageEnd) || excludedAt.Sub(outageEnd) > 15*time.Second {
				t.Fatalf("excluded at %v, want within the retry cap after the outage ended at +90s", excludedAt.Sub(start))
			}
			for _, name := range f.nodes[zone] {
				if n := f.node(t, name); !n.Spec.Unschedulable || !hasTaint(n, zone) {
					t.Errorf("%s after the outage: not excluded", name)
				}
			}
			if ex := rb.Excluded(); !ex {
				t.Error("runbook does not know the zone is excluded")
			}
		})
	}
}
