package config

import (
	"strings"
	"testing"
)

const slicesBase = `listen: 127.0.0.1:8080
auth: {tokens_file: tokens.txt}
resources:
  - name: web
    zones: [az1, az2, az3]
    frontdoor:
      type: kubernetes-endpointslices
      namespace: shop
      service: web
      mirror_service: web-gz
    control_plane:
      type: kubernetes
`

func TestKubernetesEndpointSlicesFrontDoor(t *testing.T) {
	c, err := Parse("serve.yaml", []byte(slicesBase))
	if err != nil {
		t.Fatal(err)
	}
	fd := c.Resources[0].FrontDoor
	if want := (KubernetesSlices{Namespace: "shop", Service: "web", MirrorService: "web-gz"}); fd.Type != FrontDoorKubernetesSlices || fd.KubernetesSlices != want {
		t.Fatalf("front door: %+v", fd)
	}
	// The endpoints are the cluster's: none are configured, and neither
	// min_instances nor a zone without targets is held against it.
	if len(fd.Targets) != 0 {
		t.Errorf("targets: %+v", fd.Targets)
	}
}

func TestKubernetesEndpointSlicesFrontDoorErrors(t *testing.T) {
	for _, tc := range []struct{ old, new, want string }{
		{"      namespace: shop\n", "", "serve.yaml:6: resources[0].frontdoor.namespace: required"},
		{"      service: web\n", "", "serve.yaml:6: resources[0].frontdoor.service: required"},
		{"      mirror_service: web-gz\n", "", "serve.yaml:6: resources[0].frontdoor.mirror_service: required"},
		{"namespace: shop", "namespace: Shop", `serve.yaml:8: resources[0].frontdoor.namespace: "Shop" is not a Kubernetes name (lower case letters, digits, -)`},
		{"mirror_service: web-gz", "mirror_service: web_gz", `serve.yaml:10: resources[0].frontdoor.mirror_service: "web_gz" is not a Kubernetes name (lower case letters, digits, -)`},
		{"mirror_service: web-gz", "mirror_service: web", "serve.yaml:10: resources[0].frontdoor.mirror_service: must differ from service (grayzone writes the mirror's EndpointSlices; Kubernetes writes the service's)"},
		{"      service: web\n", "      service: web\n      targets: [{id: a, zone: az1, addr: 127.0.0.1:1}]\n",
			`serve.yaml:10: resources[0].frontdoor.targets: not a key of front door type "kubernetes-endpointslices"`},
		{"      service: web\n", "      service: web\n      runtime_api: /run/haproxy.sock\n",
			`serve.yaml:10: resources[0].frontdoor.runtime_api: not a key of front door type "kubernetes-endpointslices"`},
		{"      service: web\n", "      service: web\n      max_header_bytes: 4096\n",
			`serve.yaml:10: resources[0].frontdoor.max_header_bytes: not a key of front door type "kubernetes-endpointslices"`},
		{"      service: web\n", "      service: web\n      selector: {app: web}\n",
			`serve.yaml:10: resources[0].frontdoor.selector: unknown key`},
		{"    zones: [az1, az2, az3]\n", "    zones: [az1, az2, az3]\n    min_capacity: 2\n",
			`serve.yaml:6: resources[0].min_capacity: not for front door type "kubernetes-endpointslices": its endpoints are the cluster's, not known in advance`},
		{"type: kubernetes-endpointslices", "type: kubernetes-slices", `serve.yaml:7: resources[0].frontdoor.type: unknown front door type "kubernetes-slices" (known: embedded, haproxy, xds, arc, kubernetes-endpointslices)`},
	} {
		doc := strings.Replace(slicesBase, tc.old, tc.new, 1)
		if doc == slicesBase {
			t.Fatalf("%q: edit did not apply", tc.old)
		}
		_, err := Parse("serve.yaml", []byte(doc))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q -> %q:\n got %v\nwant %s", tc.old, tc.new, err, tc.want)
		}
	}
	// The keys are the front door's own: not accepted with another type.
	doc := strings.Replace(slicesBase, "type: kubernetes-endpointslices", "type: arc\n      resource_identifier: arn:aws:elasticloadbalancing:us-east-2:123456789012:loadbalancer/app/web/0123456789abcdef", 1)
	if _, err := Parse("serve.yaml", []byte(doc)); err == nil || !strings.Contains(err.Error(), `resources[0].frontdoor.namespace: not a key of front door type "arc"`) {
		t.Errorf("namespace with type arc: %v", err)
	}
}

func TestKubernetesExample(t *testing.T) {
	c, err := Load("../../examples/serve-kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := c.Resources[0]
	if r.FrontDoor.Type != FrontDoorKubernetesSlices || r.FrontDoor.KubernetesSlices.MirrorService != "web-gz" ||
		r.ControlPlane.Type != ControlPlaneKubernetes || len(r.Canaries) != 3 {
		t.Fatalf("resource: %+v", r)
	}
}
