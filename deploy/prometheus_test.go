package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	rulesFile     = "prometheus/grayzone-rules.yaml"
	rulesTestFile = "prometheus/grayzone-rules.test.yaml"
)

// promtool finds Prometheus' promtool ($PROMTOOL or $PATH); CI must have it.
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		return p
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("promtool is not installed (Debian: prometheus)")
	}
	t.Skip("promtool is not installed (Debian: prometheus)")
	return ""
}

// The rules are valid and their unit tests pass (what CI also runs).
func TestAlertRulesPromtool(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Rules []struct {
			Alert string `json:"alert"`
			Expr  string `json:"expr"`
		} `json:"rules"`
	} `json:"groups"`
}

type ruleTests struct {
	Tests []struct {
		AlertRuleTest []struct {
			Alertname string           `json:"alertname"`
			ExpAlerts []map[string]any `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// Every rule has a test in which it fires, and one in which it stays quiet.
func TestEveryAlertRuleIsTested(t *testing.T) {
	var rf ruleFile
	var tf ruleTests
	readYAML(t, rulesFile, &rf)
	readYAML(t, rulesTestFile, &tf)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			n++
			if !fires[r.Alert] || !quiet[r.Alert] {
				t.Errorf("rule %s: tested firing %v, tested quiet %v; want both", r.Alert, fires[r.Alert], quiet[r.Alert])
			}
		}
	}
	if n < 7 {
		t.Fatalf("only %d rules", n)
	}
}

// Every grayzone_ metric the rules use is one serve declares.
func TestAlertRulesUseDeclaredMetrics(t *testing.T) {
	var rf ruleFile
	readYAML(t, rulesFile, &rf)
	var src strings.Builder
	files, _ := filepath.Glob("../server/service/*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	re := regexp.MustCompile(`\bgrayzone_[a-z0-9_]+`)
	var used []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			for _, m := range re.FindAllString(r.Expr, -1) {
				if !slices.Contains(used, m) {
					used = append(used, m)
				}
			}
		}
	}
	for _, m := range used {
		if !strings.Contains(src.String(), `"`+m+`"`) {
			t.Errorf("the rules use %s, which server/service does not declare", m)
		}
	}
}

// Asked for (prometheusRule.enabled), the chart renders the rules file as
// a PrometheusRule, unchanged; by default it renders none.
func TestHelmPrometheusRule(t *testing.T) {
	find := func(out string) map[string]any {
		for _, doc := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(out, -1) {
			var o map[string]any
			if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
				t.Fatalf("helm template output: %v\n%s", err, doc)
			}
			if o["kind"] == "PrometheusRule" {
				return o
			}
		}
		return nil
	}
	if find(helm(t, "template", "gz", chart)) != nil {
		t.Fatal("a PrometheusRule without prometheusRule.enabled")
	}
	o := find(helm(t, "template", "gz", chart, "--set", "prometheusRule.enabled=true", "--set", "prometheusRule.labels.release=prometheus"))
	if o == nil {
		t.Fatal("no PrometheusRule with prometheusRule.enabled=true")
	}
	var want map[string]any
	readYAML(t, rulesFile, &want)
	spec, _ := o["spec"].(map[string]any)
	meta, _ := o["metadata"].(map[string]any)
	labels, _ := meta["labels"].(map[string]any)
	if !reflect.DeepEqual(spec["groups"], want["groups"]) || labels["release"] != "prometheus" {
		t.Fatalf("PrometheusRule %v\nwant groups %v", o, want["groups"])
	}
}
