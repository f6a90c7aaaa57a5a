package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
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
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Data  map[string]string   `json:"data"`
	Rules []rbacv1.PolicyRule `json:"rules"`
	Spec  struct {
		Replicas int `json:"replicas"`
		Template struct {
			Spec struct {
				Containers []struct {
					Image        string   `json:"image"`
					Args         []string `json:"args"`
					VolumeMounts []struct {
						Name      string `json:"name"`
						MountPath string `json:"mountPath"`
					} `json:"volumeMounts"`
				} `json:"containers"`
				Volumes []struct {
					Name   string `json:"name"`
					Secret *struct {
						SecretName string `json:"secretName"`
					} `json:"secret"`
				} `json:"volumes"`
			} `json:"spec"`
		} `json:"template"`
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

// A kubernetes-endpointslices front door gets the EndpointSlices Role in
// its namespace, and a workload its Role in its own, without listing the
// namespaces again under rbac.
func TestHelmRBACFollowsTheConfiguration(t *testing.T) {
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte(`config:
  resources:
    - name: web
      zones: [zone-a, zone-b, zone-c]
      frontdoor: {type: kubernetes-endpointslices, namespace: shop, service: web, mirror_service: web-gz}
      control_plane:
        type: kubernetes
        workloads: [{namespace: shop, deployment: web}, {namespace: cart, deployment: cart}]
rbac:
  workloadNamespaces: [cart, extra]
  endpointSliceNamespaces: [shop]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	roles := map[string][]string{}
	for _, o := range render(t, "-f", values) {
		switch {
		case o.Kind == "ConfigMap":
			cfg, err := config.Parse("configmap serve.yaml", []byte(o.Data["serve.yaml"]))
			if err != nil {
				t.Fatalf("the chart's configuration is rejected: %v", err)
			}
			if fd := cfg.Resources[0].FrontDoor; fd.Type != config.FrontDoorKubernetesSlices || fd.KubernetesSlices.MirrorService != "web-gz" {
				t.Errorf("front door = %+v", fd)
			}
		case o.Kind == "Role" && strings.HasSuffix(o.Metadata.Name, "-endpointslices"):
			eqRules(t, o, kubernetes.SliceRules())
			roles["endpointslices"] = append(roles["endpointslices"], o.Metadata.Namespace)
		case o.Kind == "Role" && strings.HasSuffix(o.Metadata.Name, "-workloads"):
			eqRules(t, o, kubernetes.WorkloadRules())
			roles["workloads"] = append(roles["workloads"], o.Metadata.Namespace)
		}
	}
	if want := map[string][]string{"endpointslices": {"shop"}, "workloads": {"cart", "extra", "shop"}}; !reflect.DeepEqual(sorted(roles), want) {
		t.Errorf("roles by namespace = %v, want %v", roles, want)
	}
	// A front door without its namespace is refused at render time.
	if err := os.WriteFile(values, []byte(`config:
  resources:
    - name: web
      zones: [zone-a, zone-b]
      frontdoor: {type: kubernetes-endpointslices, service: web, mirror_service: web-gz}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(helmBinary(t), "template", "gz", chart, "-f", values).CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "frontdoor.namespace is required for type kubernetes-endpointslices") {
		t.Errorf("render without frontdoor.namespace: %v\n%s", err, out)
	}
}

func sorted(m map[string][]string) map[string][]string {
	for k := range m {
		slices.Sort(m[k])
	}
	return m
}

// store.type postgres: the replicas share one PostgreSQL store whose URL
// comes from a Secret (mounted, read through store_file), elect their
// leader there rather than on a Lease (no Lease Role), and advertise their
// pod's address to each other.
func TestHelmPostgresStore(t *testing.T) {
	helm(t, "lint", "--strict", chart, "--set", "store.type=postgres", "--set", "store.postgres.existingSecret=gz-store")
	// store.postgres.sharded: the replicas share the resources.
	for _, o := range render(t, "--set", "store.type=postgres", "--set", "store.postgres.existingSecret=gz-store", "--set", "store.postgres.sharded=true") {
		if o.Kind == "ConfigMap" {
			if cfg, err := config.Parse("/etc/grayzone/serve.yaml", []byte(o.Data["serve.yaml"])); err != nil || !cfg.Replica.Sharded {
				t.Errorf("store.postgres.sharded=true: %v, sharded %v", err, err == nil && cfg.Replica.Sharded)
			}
		}
	}
	objs := render(t, "--set", "store.type=postgres", "--set", "store.postgres.existingSecret=gz-store")
	var sawConfig, sawDeployment bool
	for _, o := range objs {
		switch {
		case o.Kind == "ConfigMap":
			sawConfig = true
			cfg, err := config.Parse("/etc/grayzone/serve.yaml", []byte(o.Data["serve.yaml"]))
			if err != nil {
				t.Fatalf("the chart's configuration is rejected: %v\n%s", err, o.Data["serve.yaml"])
			}
			if cfg.StoreFile != "/etc/grayzone/store/dsn" || cfg.Store != "" || cfg.LeaderElection.Type != config.LeaderElectionNone {
				t.Errorf("store_file %q store %q leader election %q; want the Secret's file and the store's election", cfg.StoreFile, cfg.Store, cfg.LeaderElection.Type)
			}
			if cfg.Replica.Sharded {
				t.Error("replica.sharded by default")
			}
		case o.Kind == "Deployment":
			sawDeployment = true
			ps := o.Spec.Template.Spec
			var secret string
			for _, v := range ps.Volumes {
				if v.Name == "store" && v.Secret != nil {
					secret = v.Secret.SecretName
				}
			}
			mounted := false
			for _, m := range ps.Containers[0].VolumeMounts {
				mounted = mounted || m.Name == "store" && m.MountPath == "/etc/grayzone/store"
			}
			if secret != "gz-store" || !mounted {
				t.Errorf("store Secret %q mounted %v; want gz-store at /etc/grayzone/store", secret, mounted)
			}
			if args := strings.Join(ps.Containers[0].Args, " "); !strings.Contains(args, "--advertise $(POD_IP):8080") {
				t.Errorf("args %q: want --advertise $(POD_IP):8080", args)
			}
		case o.Kind == "Role" && strings.HasSuffix(o.Metadata.Name, "-lease"):
			t.Error("a Lease Role with store.type postgres (the store elects the leader)")
		}
	}
	if !sawConfig || !sawDeployment {
		t.Fatalf("ConfigMap %v Deployment %v rendered", sawConfig, sawDeployment)
	}
	for _, tc := range []struct{ set, want string }{
		{"store.type=postgres", "store.postgres.existingSecret is required with store.type postgres"},
		{"store.type=mysql", `store.type: "mysql": want sqlite or postgres`},
	} {
		out, err := exec.Command(helmBinary(t), "template", "gz", chart, "--set", tc.set).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("--set %s: %v\n%s", tc.set, err, out)
		}
	}
}

// The chart's default image is the one deploy/image/build.sh builds and
// tags (CI builds it and runs it), and it runs as the image's user.
func TestHelmDefaultImageIsTheBuiltImage(t *testing.T) {
	out, err := exec.Command("image/build.sh", "--tag").Output()
	if err != nil {
		t.Fatalf("image/build.sh --tag: %v", err)
	}
	want := strings.TrimSpace(string(out))
	if !strings.HasPrefix(want, "ghcr.io/grayzone/grayzone:") {
		t.Fatalf("build.sh tags %q", want)
	}
	n := 0
	for _, o := range render(t) {
		if o.Kind != "Deployment" {
			continue
		}
		n++
		if got := o.Spec.Template.Spec.Containers[0].Image; got != want {
			t.Errorf("the chart's default image is %q, build.sh tags %q", got, want)
		}
	}
	if n != 1 {
		t.Fatalf("%d Deployments rendered", n)
	}
	// The image's user (Dockerfile USER) is the pod's runAsUser.
	df, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile(chart + "/templates/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^USER 65532:65532$`).Match(df) || !strings.Contains(string(tmpl), "runAsUser: 65532") {
		t.Error("the Dockerfile's USER and the chart's runAsUser are not both 65532")
	}
}
