package service_test

// grayzone serve as a real process on a real kube-apiserver (internal/kubetest)
// with both Kubernetes adapters: the EndpointSlices front door and the
// cordon/taint control plane, as the least-privileged user the chart's
// rules make it. Everything is asserted on the API server's objects.

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/grayzone/grayzone/actuator/kubernetes"
	"github.com/grayzone/grayzone/internal/kubetest"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/telemetry/batch"
)

// kubeSeq keeps names apart across go test -count=N, which shares the cluster.
var kubeSeq atomic.Int64

// kubeWorld is a namespace with a Deployment's pods on nodes in three
// zones, the Service web (its EndpointSlice as Kubernetes' controller would
// write it), the selector-less Service web-gz, and the grayzone user bound
// to exactly the rules the chart ships.
type kubeWorld struct {
	admin k8s.Interface
	ns    string
	zones []string
	nodes map[string][]string // zone -> node names
	addrs map[string][]string // zone -> endpoint addresses
}

func newKubeWorld(t *testing.T, cl *kubetest.Cluster) *kubeWorld {
	t.Helper()
	ctx := context.Background()
	p := fmt.Sprintf("gzk%d", kubeSeq.Add(1))
	w := &kubeWorld{admin: k8s.NewForConfigOrDie(cl.Config(kubetest.Admin)), ns: p, nodes: map[string][]string{}, addrs: map[string][]string{}}
	okK(t)(w.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.ns}}, metav1.CreateOptions{}))
	src := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{
			discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("http"), Port: ptrTo(int32(8080)), Protocol: ptrTo(corev1.ProtocolTCP)}},
	}
	for zi := range 3 {
		zone := fmt.Sprintf("%s-z%d", p, zi+1)
		w.zones = append(w.zones, zone)
		for i := range 2 {
			node := fmt.Sprintf("%s-%d", zone, i+1)
			addr := fmt.Sprintf("10.%d.%d.%d", kubeSeq.Load()%250, zi+1, i+1)
			w.nodes[zone] = append(w.nodes[zone], node)
			w.addrs[zone] = append(w.addrs[zone], addr)
			okK(t)(w.admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node,
				Labels: map[string]string{kubernetes.DefaultZoneLabel: zone}}}, metav1.CreateOptions{}))
			// No scheduler or kubelet here: the pod is bound by hand.
			okK(t)(w.admin.CoreV1().Pods(w.ns).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "web-" + node, Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "web", Image: "example.invalid/web"}}}}, metav1.CreateOptions{}))
			src.Endpoints = append(src.Endpoints, discoveryv1.Endpoint{Addresses: []string{addr}, Zone: ptrTo(zone), NodeName: ptrTo(node),
				Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true)}})
		}
	}
	okK(t)(w.admin.AppsV1().Deployments(w.ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptrTo(int32(6)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example.invalid/web"}}}}}}, metav1.CreateOptions{}))
	port := []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}
	okK(t)(w.admin.CoreV1().Services(w.ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: port}}, metav1.CreateOptions{}))
	okK(t)(w.admin.CoreV1().Services(w.ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web-gz"},
		Spec: corev1.ServiceSpec{Ports: port}}, metav1.CreateOptions{}))
	okK(t)(w.admin.DiscoveryV1().EndpointSlices(w.ns).Create(ctx, src, metav1.CreateOptions{}))

	// The chart's rules, from actuator/kubernetes/rbac.go, and nothing else.
	subj := []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: kubetest.Grayzone}}
	okK(t)(w.admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: p}, Rules: kubernetes.ClusterRules()}, metav1.CreateOptions{}))
	okK(t)(w.admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: p},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: p}, Subjects: subj}, metav1.CreateOptions{}))
	for name, rules := range map[string][]rbacv1.PolicyRule{"workloads": kubernetes.WorkloadRules(), "endpointslices": kubernetes.SliceRules()} {
		okK(t)(w.admin.RbacV1().Roles(w.ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}))
		okK(t)(w.admin.RbacV1().RoleBindings(w.ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name}, Subjects: subj}, metav1.CreateOptions{}))
	}
	return w
}

// okK fails the test on the error of an API call: okK(t)(client.Create(...)).
func okK(t *testing.T) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// mirrored lists web-gz's endpoint addresses (the slices grayzone owns)
// and the newest resourceVersion among those slices.
func (w *kubeWorld) mirrored(t *testing.T) ([]string, int64) {
	t.Helper()
	list, err := w.admin.DiscoveryV1().EndpointSlices(w.ns).List(context.Background(), metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labels.Set{
		discoveryv1.LabelServiceName: "web-gz", discoveryv1.LabelManagedBy: kubernetes.ManagedBy}).String()})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var rv int64
	for _, sl := range list.Items {
		for _, ep := range sl.Endpoints {
			out = append(out, ep.Addresses...)
		}
		rv = max(rv, resourceVersion(t, sl.ObjectMeta))
	}
	slices.Sort(out)
	return out, rv
}

// resourceVersion is the object's last write as a number. With one etcd
// behind the API server it is etcd's revision, which orders writes across
// objects: the tests use it to check which of two changes came first.
func resourceVersion(t *testing.T, m metav1.ObjectMeta) int64 {
	t.Helper()
	v, err := strconv.ParseInt(m.ResourceVersion, 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q of %s: %v", m.ResourceVersion, m.Name, err)
	}
	return v
}

func (w *kubeWorld) except(zone string) []string {
	var out []string
	for _, z := range w.zones {
		if z != zone {
			out = append(out, w.addrs[z]...)
		}
	}
	slices.Sort(out)
	return out
}

func (w *kubeWorld) node(t *testing.T, name string) *corev1.Node {
	t.Helper()
	n, err := w.admin.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (w *kubeWorld) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	d, err := w.admin.AppsV1().Deployments(w.ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func hasTaint(n *corev1.Node) bool {
	return slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == kubernetes.TaintKey })
}

func grayzoneMarks(n *corev1.Node) []string {
	var out []string
	for k := range maps.Keys(n.Annotations) {
		if k == kubernetes.AnnotationCordoned || k == kubernetes.AnnotationTainted {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// observeZones posts a second of observations: two instances per zone, the
// failing zone's failing half their requests and its canary failing ("" none).
func observeZones(t *testing.T, c *api.Client, zones []string, failing string) {
	t.Helper()
	var obs []batch.ObservationIn
	for _, z := range zones {
		for i := range 80 {
			o := batch.ObservationIn{Source: "server", Zone: z, Instance: fmt.Sprintf("%s-%d", z, i%2+1), Operation: "ride", Outcome: "success", LatencyMs: 4}
			if z == failing && (i%2 == 0 || i%4 == 1) {
				o.Outcome = "fault"
			}
			obs = append(obs, o)
		}
		o := batch.ObservationIn{Source: "canary", Zone: z, Operation: "home", Outcome: "success", LatencyMs: 4}
		if z == failing {
			o.Outcome = "fault"
		}
		obs = append(obs, o)
	}
	if _, err := c.Ingest(context.Background(), batch.ObservationBatch{Resource: "web", Observations: obs}); err != nil {
		t.Fatal(err)
	}
}

// A gray failure in one zone, end to end: the automatic shift takes the
// zone's endpoints out of web-gz's slices; then the runbook cordons and
// taints the zone's nodes (nothing evicted) and raises the Deployment by the
// zone's pods. On recovery it reverts exactly that, in reverse order: nodes
// first, then the endpoints, then the extra replicas. A node an operator had
// cordoned before stays cordoned. Then an operator's shift through the API.
func TestServeKubernetesShiftCordonsAndReverts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs grayzone serve against a kube-apiserver")
	}
	cl := kubetest.Shared(t)
	w := newKubeWorld(t, cl)
	ctx := context.Background()
	bad := w.zones[0]
	opCordoned, ours := w.nodes[bad][0], w.nodes[bad][1]
	n := w.node(t, opCordoned)
	n.Spec.Unschedulable = true // an operator's cordon, before grayzone
	okK(t)(w.admin.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}))

	dir := t.TempDir()
	kc, err := cl.Kubeconfig(dir, kubetest.Grayzone)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "serve.yaml")
	y := fmt.Sprintf(`auth: {tokens: [test-token-0123456789abcdef], open_reads: true}
resources:
  - name: web
    zones: [%s]
    frontdoor:
      type: kubernetes-endpointslices
      namespace: %s
      service: web
      mirror_service: web-gz
    autoshift: {control_plane_after: 1s, recovery_hold: 5s}
    control_plane:
      type: kubernetes
      workloads: [{namespace: %[2]s, deployment: web}]
`, w.zones[0]+", "+w.zones[1]+", "+w.zones[2], w.ns)
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServeEnv(t, []string{"KUBECONFIG=" + kc}, "--config", cfg, "--data-dir", filepath.Join(dir, "data"))
	c := api.NewClient(s.url(), "test-token-0123456789abcdef")
	all := w.except("")
	eventually(t, 30*time.Second, "web-gz to mirror web", func() bool {
		got, _ := w.mirrored(t)
		return slices.Equal(got, all)
	})

	// The way in: data plane first.
	var shiftedRV int64
	eventually(t, 60*time.Second, "the zone's endpoints out of web-gz", func() bool {
		observeZones(t, c, w.zones, bad)
		var got []string
		got, shiftedRV = w.mirrored(t)
		return slices.Equal(got, w.except(bad))
	})
	eventually(t, 30*time.Second, "the zone's nodes cordoned and tainted", func() bool {
		observeZones(t, c, w.zones, bad)
		a, b := w.node(t, opCordoned), w.node(t, ours)
		return hasTaint(a) && hasTaint(b) && b.Spec.Unschedulable && *w.deployment(t).Spec.Replicas == 8
	})
	for _, name := range w.nodes[bad] {
		n := w.node(t, name)
		if rv := resourceVersion(t, n.ObjectMeta); rv < shiftedRV {
			t.Errorf("node %s changed (rv %d) before the endpoints left web-gz (rv %d): control plane before data plane", name, rv, shiftedRV)
		}
	}
	if got := grayzoneMarks(w.node(t, opCordoned)); !slices.Equal(got, []string{kubernetes.AnnotationTainted}) {
		t.Errorf("the operator's cordoned node carries marks %v, want only the taint's (its cordon is not grayzone's)", got)
	}
	for _, z := range w.zones[1:] {
		for _, name := range w.nodes[z] {
			if n := w.node(t, name); n.Spec.Unschedulable || hasTaint(n) || len(grayzoneMarks(n)) > 0 {
				t.Errorf("node %s of healthy zone %s was changed: %+v", name, z, n.Spec)
			}
		}
	}
	// Nothing evicted: every pod is still there, on its node.
	pods, err := w.admin.CoreV1().Pods(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 6 {
		t.Fatalf("pods after the exclusion: %d, %v", len(pods.Items), err)
	}

	// The way out: control plane first, then the endpoints, then the extra
	// replicas (the runbook's reverse order).
	eventually(t, 60*time.Second, "recovery: endpoints back, nodes untainted, replicas back", func() bool {
		observeZones(t, c, w.zones, "")
		got, _ := w.mirrored(t)
		return slices.Equal(got, all) && !hasTaint(w.node(t, ours)) && !hasTaint(w.node(t, opCordoned)) && *w.deployment(t).Spec.Replicas == 6
	})
	a, b := w.node(t, opCordoned), w.node(t, ours)
	if !a.Spec.Unschedulable || len(grayzoneMarks(a)) != 0 {
		t.Errorf("the operator's node after recovery: unschedulable %v, marks %v; want its cordon kept and no marks", a.Spec.Unschedulable, grayzoneMarks(a))
	}
	if b.Spec.Unschedulable || hasTaint(b) || len(grayzoneMarks(b)) != 0 { // (the API server's own not-ready taint stays)
		t.Errorf("grayzone's node after recovery: unschedulable %v, taints %v, marks %v; want all reverted", b.Spec.Unschedulable, b.Spec.Taints, grayzoneMarks(b))
	}
	d := w.deployment(t)
	if _, marked := d.Annotations[kubernetes.AnnotationExtra]; marked {
		t.Errorf("deployment still marked: %v", d.Annotations)
	}
	_, restoredRV := w.mirrored(t)
	nodeRV, depRV := max(resourceVersion(t, a.ObjectMeta), resourceVersion(t, b.ObjectMeta)), resourceVersion(t, d.ObjectMeta)
	if !(nodeRV < restoredRV && restoredRV < depRV) {
		t.Errorf("recovery order by resourceVersion: nodes %d, endpoints %d, replicas %d; want nodes < endpoints < replicas", nodeRV, restoredRV, depRV)
	}
	t.Logf("resourceVersions: endpoints out %d, nodes excluded after; on recovery nodes %d < endpoints back %d < replicas back %d", shiftedRV, nodeRV, restoredRV, depRV)

	// An operator's shift through the API, with a token: endpoints only.
	sh, err := c.StartShift(ctx, api.StartShiftRequest{Resource: "web", AwayFrom: w.zones[2], ExpiresIn: "10m", Comment: "kubernetes process test"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the manual shift in web-gz", func() bool {
		got, _ := w.mirrored(t)
		return slices.Equal(got, w.except(w.zones[2]))
	})
	if _, err := c.CancelShift(ctx, sh.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the manual shift's end in web-gz", func() bool {
		got, _ := w.mirrored(t)
		return slices.Equal(got, all)
	})
	for _, name := range w.nodes[w.zones[2]] {
		if n := w.node(t, name); n.Spec.Unschedulable || hasTaint(n) {
			t.Errorf("a manual shift changed node %s", name)
		}
	}
}
