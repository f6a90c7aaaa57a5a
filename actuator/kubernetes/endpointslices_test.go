package kubernetes

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/internal/kubetest"
)

// sourceSlice is what Kubernetes' EndpointSlice controller would write for
// the selected Service: one ready endpoint per zone and address.
func sourceSlice(ns, name string, eps map[string]string) *discoveryv1.EndpointSlice {
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{
			discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(8080)), Protocol: ptr(corev1.ProtocolTCP)}},
	}
	for _, addr := range slices.Sorted(maps.Keys(eps)) {
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{addr}, Zone: ptr(eps[addr]),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}})
	}
	return sl
}

// addresses lists the endpoints of the slices grayzone owns for "web-gz".
func addresses(ctx context.Context, admin k8s.Interface, ns string) ([]string, error) {
	list, err := admin.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labels.Set{
		discoveryv1.LabelServiceName: "web-gz", discoveryv1.LabelManagedBy: ManagedBy}).String()})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, sl := range list.Items {
		for _, ep := range sl.Endpoints {
			out = append(out, ep.Addresses...)
		}
	}
	slices.Sort(out)
	return out, nil
}

func TestEndpointSlicesLeaveTheShiftedZoneOut(t *testing.T) {
	cl := kubetest.Shared(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin := k8s.NewForConfigOrDie(cl.Config(kubetest.Admin))
	ns := unique("eps")
	must(t, create(ctx, admin.CoreV1().Namespaces(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	port := []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}
	must(t, create(ctx, admin.CoreV1().Services(ns), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: port}}))
	must(t, create(ctx, admin.CoreV1().Services(ns), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web-gz"}, Spec: corev1.ServiceSpec{Ports: port}}))
	must(t, create(ctx, admin.DiscoveryV1().EndpointSlices(ns), sourceSlice(ns, "web-1", map[string]string{
		"10.1.0.1": "az1", "10.1.0.2": "az1", "10.2.0.1": "az2", "10.3.0.1": "az3"})))
	must(t, create(ctx, admin.RbacV1().Roles(ns), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "grayzone"}, Rules: SliceRules()}))
	must(t, create(ctx, admin.RbacV1().RoleBindings(ns), &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "grayzone"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "grayzone"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: kubetest.Grayzone}}}))

	s := NewSlices(SlicesOptions{Client: k8s.NewForConfigOrDie(cl.Config(kubetest.Grayzone)), Namespace: ns, Source: "web", Service: "web-gz"})
	s.Start(ctx)
	waitAddrs := func(want ...string) {
		t.Helper()
		var got []string
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			var err error
			got, err = addresses(ctx, admin, ns)
			return slices.Equal(got, want), err
		})
		if err != nil {
			t.Fatalf("web-gz endpoints = %v, want %v (%v)", got, want, err)
		}
	}
	all := []string{"10.1.0.1", "10.1.0.2", "10.2.0.1", "10.3.0.1"}
	waitAddrs(all...) // unshifted: a mirror of the source

	if err := s.Apply(ctx, actuator.Action{Kind: actuator.ShiftAway, Zone: "az1"}); err != nil {
		t.Fatal(err)
	}
	got, err := addresses(ctx, admin, ns)
	must(t, err)
	if want := []string{"10.2.0.1", "10.3.0.1"}; !slices.Equal(got, want) {
		t.Fatalf("after shift away from az1 (Apply returned): endpoints %v, want %v", got, want)
	}
	// The source scales during the shift: new endpoints are mirrored, the
	// shifted zone's stay out.
	src, err := admin.DiscoveryV1().EndpointSlices(ns).Get(ctx, "web-1", metav1.GetOptions{})
	must(t, err)
	src.Endpoints = append(src.Endpoints,
		discoveryv1.Endpoint{Addresses: []string{"10.2.0.2"}, Zone: ptr("az2")},
		discoveryv1.Endpoint{Addresses: []string{"10.1.0.3"}, Zone: ptr("az1")})
	_, err = admin.DiscoveryV1().EndpointSlices(ns).Update(ctx, src, metav1.UpdateOptions{})
	must(t, err)
	waitAddrs("10.2.0.1", "10.2.0.2", "10.3.0.1")

	// The slices are grayzone's: the source's own slices are untouched.
	if s, err := admin.DiscoveryV1().EndpointSlices(ns).Get(ctx, "web-1", metav1.GetOptions{}); err != nil || len(s.Endpoints) != 6 {
		t.Fatalf("source slice changed: %v %v", s, err)
	}

	if err := s.Apply(ctx, actuator.Action{Kind: actuator.EndShift, Zone: "az1"}); err != nil {
		t.Fatal(err)
	}
	got, err = addresses(ctx, admin, ns)
	must(t, err)
	if want := []string{"10.1.0.1", "10.1.0.2", "10.1.0.3", "10.2.0.1", "10.2.0.2", "10.3.0.1"}; !slices.Equal(got, want) {
		t.Fatalf("after end_shift: %v, want %v", got, want)
	}

	// A source slice that goes away takes its mirror with it.
	must(t, admin.DiscoveryV1().EndpointSlices(ns).Delete(ctx, "web-1", metav1.DeleteOptions{}))
	waitAddrs()
}

// A follower keeps its informer warm but writes nothing; the moment it
// leads, the next SetShifted (serve calls it every tick) writes the slices.
func TestEndpointSlicesOnlyTheLeaderWrites(t *testing.T) {
	cl := kubetest.Shared(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin := k8s.NewForConfigOrDie(cl.Config(kubetest.Admin))
	ns := unique("epsl")
	must(t, create(ctx, admin.CoreV1().Namespaces(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	must(t, create(ctx, admin.DiscoveryV1().EndpointSlices(ns), sourceSlice(ns, "web-1", map[string]string{"10.1.0.1": "az1", "10.2.0.1": "az2"})))
	must(t, create(ctx, admin.RbacV1().Roles(ns), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "grayzone"}, Rules: SliceRules()}))
	must(t, create(ctx, admin.RbacV1().RoleBindings(ns), &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "grayzone"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "grayzone"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: kubetest.Grayzone}}}))

	var leading atomic.Bool
	s := NewSlices(SlicesOptions{Client: k8s.NewForConfigOrDie(cl.Config(kubetest.Grayzone)), Namespace: ns, Source: "web", Service: "web-gz", Leading: leading.Load})
	go s.Run(ctx)
	must(t, s.SetShifted(ctx, "az1", true))
	// Sync returns once the cache is synced and the slices are as they
	// should be; a follower's leaves them alone.
	must(t, s.Sync(ctx))
	if got, err := addresses(ctx, admin, ns); err != nil || len(got) != 0 {
		t.Fatalf("a follower wrote slices: %v %v", got, err)
	}
	leading.Store(true)
	must(t, s.SetShifted(ctx, "az1", true)) // unchanged, but now leading
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := addresses(ctx, admin, ns)
		return slices.Equal(got, []string{"10.2.0.1"}), err
	})
	if err != nil {
		got, _ := addresses(ctx, admin, ns)
		t.Fatalf("after leading: endpoints %v, want [10.2.0.1] (%v)", got, err)
	}
	must(t, s.SetShifted(ctx, "az1", false))
	must(t, s.Sync(ctx))
	if got, err := addresses(ctx, admin, ns); err != nil || !slices.Equal(got, []string{"10.1.0.1", "10.2.0.1"}) {
		t.Fatalf("after the shift ended: %v %v", got, err)
	}
}
