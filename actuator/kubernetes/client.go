package kubernetes

import (
	"fmt"

	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	discoveryv1client "k8s.io/client-go/kubernetes/typed/discovery/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/flowcontrol"
)

// Client is the part of the Kubernetes API grayzone uses: nodes and pods
// (core/v1), Deployments (apps/v1), EndpointSlices (discovery.k8s.io/v1)
// and Leases (coordination.k8s.io/v1). client-go's *kubernetes.Clientset
// satisfies it, but grayzone builds its own from these four typed clients:
// the kubernetes package imports the client of every API group (and, with
// its informers and listers, their generated code): 220 more packages to
// compile, and 17 MiB more binary (README, "Two commands").
type Client interface {
	CoreV1() corev1client.CoreV1Interface
	AppsV1() appsv1client.AppsV1Interface
	DiscoveryV1() discoveryv1client.DiscoveryV1Interface
	CoordinationV1() coordinationv1client.CoordinationV1Interface
}

// NewClient connects the way kubectl does: $KUBECONFIG, else
// ~/.kube/config, else the pod's service account (in-cluster).
func NewClient() (Client, error) {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: client configuration (KUBECONFIG or in-cluster): %w", err)
	}
	cfg.UserAgent = "grayzone"
	return NewClientForConfig(cfg)
}

// NewClientForConfig builds the typed clients on one HTTP client (one
// connection pool) and one rate limiter, as kubernetes.NewForConfig does.
func NewClientForConfig(c *rest.Config) (Client, error) {
	cfg := *c
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	if cfg.RateLimiter == nil && cfg.QPS > 0 {
		if cfg.Burst <= 0 {
			return nil, fmt.Errorf("kubernetes: client configuration: QPS %v needs a burst above 0", cfg.QPS)
		}
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, cfg.Burst)
	}
	hc, err := rest.HTTPClientFor(&cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: client: %w", err)
	}
	var cl clients
	if cl.core, err = corev1client.NewForConfigAndClient(&cfg, hc); err != nil {
		return nil, fmt.Errorf("kubernetes: core/v1 client: %w", err)
	}
	if cl.apps, err = appsv1client.NewForConfigAndClient(&cfg, hc); err != nil {
		return nil, fmt.Errorf("kubernetes: apps/v1 client: %w", err)
	}
	if cl.discovery, err = discoveryv1client.NewForConfigAndClient(&cfg, hc); err != nil {
		return nil, fmt.Errorf("kubernetes: discovery/v1 client: %w", err)
	}
	if cl.coordination, err = coordinationv1client.NewForConfigAndClient(&cfg, hc); err != nil {
		return nil, fmt.Errorf("kubernetes: coordination/v1 client: %w", err)
	}
	return cl, nil
}

type clients struct {
	core         *corev1client.CoreV1Client
	apps         *appsv1client.AppsV1Client
	discovery    *discoveryv1client.DiscoveryV1Client
	coordination *coordinationv1client.CoordinationV1Client
}

func (c clients) CoreV1() corev1client.CoreV1Interface                { return c.core }
func (c clients) AppsV1() appsv1client.AppsV1Interface                { return c.apps }
func (c clients) DiscoveryV1() discoveryv1client.DiscoveryV1Interface { return c.discovery }
func (c clients) CoordinationV1() coordinationv1client.CoordinationV1Interface {
	return c.coordination
}
