package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/grayzone/grayzone/server/config"
)

// TestHelmXDSMutualTLS: with ci/xds-values.yaml the chart runs an xDS
// front door with mutual TLS: the configuration grayzone reads names the
// mounted Secret's files, the Secret is mounted there (as a directory, so
// its updates reach serve), and the Service exposes the xDS port. Without
// the Secret (and without insecure: true) rendering fails with the reason.
func TestHelmXDSMutualTLS(t *testing.T) {
	values := chart + "/ci/xds-values.yaml"
	helm(t, "lint", "--strict", chart, "-f", values)
	var mounted, volume, configured bool
	for _, o := range render(t, "-f", values) {
		switch o.Kind {
		case "ConfigMap":
			cfg, err := config.Parse("configmap serve.yaml", []byte(o.Data["serve.yaml"]))
			if err != nil {
				t.Fatalf("the chart's configuration is rejected: %v\n%s", err, o.Data["serve.yaml"])
			}
			x := cfg.Resources[0].FrontDoor.XDSSecurity
			configured = x.MutualTLS() && x.CertFile == "/etc/grayzone/xds/tls.crt" && x.KeyFile == "/etc/grayzone/xds/tls.key" &&
				x.ClientCAFile == "/etc/grayzone/xds/ca.crt"
			if !configured {
				t.Errorf("xDS security = %+v, want the mounted Secret's files", x)
			}
		case "Deployment":
			for _, m := range o.Spec.Template.Spec.Containers[0].VolumeMounts {
				mounted = mounted || m.Name == "xds-tls" && m.MountPath == "/etc/grayzone/xds"
			}
			for _, v := range o.Spec.Template.Spec.Volumes {
				volume = volume || v.Name == "xds-tls" && v.Secret != nil && v.Secret.SecretName == "grayzone-xds"
			}
		}
	}
	if !mounted || !volume || !configured {
		t.Errorf("mounted %v, volume of Secret grayzone-xds %v, configured %v", mounted, volume, configured)
	}
	out := helm(t, "template", "gz", chart, "-f", values)
	var xdsPort bool
	for _, doc := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(out, -1) {
		var svc struct {
			Kind string
			Spec struct {
				Ports []struct {
					Name string
					Port int
				}
			}
		}
		if err := yaml.Unmarshal([]byte(doc), &svc); err != nil {
			t.Fatal(err)
		}
		for _, p := range svc.Spec.Ports {
			xdsPort = xdsPort || svc.Kind == "Service" && p.Name == "xds" && p.Port == 18000
		}
	}
	if !xdsPort {
		t.Error("the Service does not expose the xDS port 18000")
	}

	// No Secret: refused at render time, naming the resource and the fix.
	noSecret := filepath.Join(t.TempDir(), "values.yaml")
	data, err := os.ReadFile(values)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(noSecret, []byte(strings.Replace(string(data), "secretName: grayzone-xds", `secretName: ""`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(helmBinary(t), "template", "gz", chart, "-f", values, "-f", noSecret).CombinedOutput(); err == nil ||
		!strings.Contains(string(b), "resource web: frontdoor type xds needs mutual TLS: set xds.tls.secretName") {
		t.Errorf("without the Secret: %v\n%s", err, b)
	}
}
