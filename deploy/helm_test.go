package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/grayzone/grayzone/actuator/kubernetes"
	"github.com/grayzone/grayzone/server/config"
)

// helmBinary finds helm: $HELM, $PATH, or the cache of .ci/helm.sh.
func helmBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HELM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	cache := os.Getenv("GRAYZONE_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "grayzone")
	}
	if m, _ := filepath.Glob(filepath.Join(cache, "helm-*", "helm")); len(m) > 0 {
		return m[len(m)-1]
	}
	msg := "helm is not built: run .ci/helm.sh (or set HELM)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func helm(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(helmBinary(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

const chart = "helm/grayzone"

func TestHelmLint(t *testing.T) {
	helm(t, "lint", "--strict", chart)
	helm(t, "lint", "--strict", chart, "-f", chart+"/ci/kubernetes-values.yaml")
}

type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Data  map[string]string   `json:"data"`
	Rules []rbacv1.PolicyRule `json:"rules"`
	Spec  struct {
		Replicas int `json:"replicas"`
	} `json:"spec"`
}

func render(t *testing.T, args ...string) []object {
	t.Helper()
	out := helm(t, append([]string{"template", "gz", chart, "--namespace", "ops"}, args...)...)
	var objs []object
	for _, doc := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(out, -1) {
		var o object
		// sigs.k8s.io/yaml goes through JSON, so the API types' json tags apply.
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("helm template output: %v\n%s", err, doc)
		}
		if o.Kind != "" {
			objs = append(objs, o)
		}
	}
	return objs
}

// The chart's configuration is one grayzone accepts, its RBAC is exactly
// the rules the code declares, and it runs two replicas with a Lease.
func TestHelmTemplateMatchesTheCode(t *testing.T) {
	objs := render(t, "-f", chart+"/ci/kubernetes-values.yaml")
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.Kind]++
		switch {
		case o.Kind == "ConfigMap":
			cfg, err := config.Parse("configmap serve.yaml", []byte(o.Data["serve.yaml"]))
			if err != nil {
				t.Fatalf("the chart's configuration is rejected: %v\n%s", err, o.Data["serve.yaml"])
			}
			if cfg.LeaderElection.Type != config.LeaderElectionKubernetes {
				t.Errorf("leader_election = %+v, want kubernetes-lease", cfg.LeaderElection)
			}
			if cfg.Resources[0].ControlPlane.Type != config.ControlPlaneKubernetes {
				t.Errorf("control plane = %q, want kubernetes", cfg.Resources[0].ControlPlane.Type)
			}
		case o.Kind == "ClusterRole":
			eqRules(t, o, kubernetes.ClusterRules())
		case o.Kind == "Role" && strings.HasSuffix(o.Metadata.Name, "-workloads"):
			eqRules(t, o, kubernetes.WorkloadRules())
		case o.Kind == "Role" && strings.HasSuffix(o.Metadata.Name, "-endpointslices"):
			eqRules(t, o, kubernetes.SliceRules())
		case o.Kind == "Role" && strings.HasSuffix(o.Metadata.Name, "-lease"):
			eqRules(t, o, []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}}})
		case o.Kind == "Deployment":
			if o.Spec.Replicas != 2 {
				t.Errorf("replicas = %d, want 2", o.Spec.Replicas)
			}
		}
	}
	for kind, n := range map[string]int{"Deployment": 1, "ServiceAccount": 1, "ConfigMap": 1, "Secret": 1, "PodDisruptionBudget": 1,
		"ServiceMonitor": 1, "ClusterRole": 1, "Role": 4, "RoleBinding": 4, "Service": 1} {
		if kinds[kind] != n {
			t.Errorf("%d %s objects, want %d (all: %v)", kinds[kind], kind, n, kinds)
		}
	}
	// Defaults: no ServiceMonitor, and a generated token.
	for _, o := range render(t) {
		if o.Kind == "ServiceMonitor" {
			t.Error("ServiceMonitor rendered with serviceMonitor.enabled false")
		}
	}
}

func eqRules(t *testing.T, o object, want []rbacv1.PolicyRule) {
	t.Helper()
	if !reflect.DeepEqual(o.Rules, want) {
		t.Errorf("%s %s rules = %+v, want exactly %+v", o.Kind, o.Metadata.Name, o.Rules, want)
	}
}
