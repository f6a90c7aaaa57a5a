package kubernetes

import rbacv1 "k8s.io/api/rbac/v1"

// ClusterRules are the cluster-scoped permissions of the control plane:
// read and update nodes (cordon, taint, the marks), nothing else — no
// delete, no eviction. deploy/helm/grayzone ships exactly these.
func ClusterRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch", "update"}},
	}
}

// WorkloadRules are the permissions in each namespace of a scaled
// workload: count its pods per zone, raise and lower its replicas.
func WorkloadRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "update"}},
	}
}

// SliceRules are the permissions of the EndpointSlices front door in the
// Service's namespace: read the source's slices, own the Service's.
func SliceRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch", "create", "update", "delete"}},
	}
}
