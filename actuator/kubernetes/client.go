package kubernetes

import (
	"fmt"

	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// NewClient connects the way kubectl does: $KUBECONFIG, else
// ~/.kube/config, else the pod's service account (in-cluster).
func NewClient() (k8s.Interface, error) {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: client configuration (KUBECONFIG or in-cluster): %w", err)
	}
	cfg.UserAgent = "grayzone"
	return k8s.NewForConfig(cfg)
}
