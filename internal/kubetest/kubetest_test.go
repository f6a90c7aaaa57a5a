package kubetest

import (
	"context"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

// The cluster enforces RBAC: admin may list nodes, grayzone (no role) may not.
func TestClusterEnforcesRBAC(t *testing.T) {
	c := Shared(t)
	ctx := context.Background()
	admin := kubernetes.NewForConfigOrDie(c.Config(Admin))
	if _, err := admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("admin list nodes: %v", err)
	}
	gz := kubernetes.NewForConfigOrDie(c.Config(Grayzone))
	_, err := gz.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("grayzone without a role listed nodes: err = %v, want Forbidden", err)
	}
}

// The proxy passes requests through, answers 500 or drops them on demand.
func TestProxyFaults(t *testing.T) {
	c := Shared(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := c.Proxy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.Config(Admin)
	cfg.QPS = -1
	cs := kubernetes.NewForConfigOrDie(cfg)
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	must(t, p.SetFault(Error))
	_, err = cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
	if !apierrors.IsInternalError(err) && !apierrors.IsUnexpectedServerError(err) {
		if se, ok := err.(apierrors.APIStatus); !ok || se.Status().Code != 500 {
			t.Fatalf("with Error: err = %v, want a 500", err)
		}
	}
	must(t, p.SetFault(Down))
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kubetest-down"}}, metav1.CreateOptions{}); err == nil {
		t.Fatal("with Down: create succeeded")
	}
	must(t, p.SetFault(Pass))
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("after Pass again: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
