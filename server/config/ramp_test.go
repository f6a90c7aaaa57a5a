package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRampDefaultsByFrontDoor(t *testing.T) {
	c, err := Parse("serve.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := c.Resource("web")
	if !slices.Equal(r.Autoshift.Ramp, []int{5, 25, 100}) || r.Autoshift.StepHold != 0 {
		t.Errorf("embedded: ramp %v hold %s, want the default ramp", r.Autoshift.Ramp, r.Autoshift.StepHold)
	}
	if p := r.RunbookPolicy(); !slices.Equal(p.Ramp, r.Autoshift.Ramp) {
		t.Errorf("runbook policy ramp %v", p.Ramp)
	}
	c, err = Load(filepath.Join("..", "..", "examples", "aws.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := c.Resource("web"); r.Autoshift.Ramp != nil {
		t.Errorf("arc: ramp %v, want none (ARC cannot weigh)", r.Autoshift.Ramp)
	}
}

func TestRampConfig(t *testing.T) {
	for _, tc := range []struct {
		name, ramp string
		steps      []int
		hold       time.Duration
	}{
		{"off", "{enabled: false}", nil, 0},
		{"steps", "{steps: [10, 50, 100]}", []int{10, 50, 100}, 0},
		{"hold", "{step_hold: 45s}", []int{5, 25, 100}, 45 * time.Second},
		{"one step", "{steps: [100]}", []int{100}, 0},
	} {
		doc := strings.Replace(base, "autoshift: {enabled: true}", "autoshift: {enabled: true, ramp: "+tc.ramp+"}", 1)
		c, err := Parse("serve.yaml", []byte(doc))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		r, _ := c.Resource("web")
		if !slices.Equal(r.Autoshift.Ramp, tc.steps) || r.Autoshift.StepHold != tc.hold {
			t.Errorf("%s: ramp %v hold %s, want %v %s", tc.name, r.Autoshift.Ramp, r.Autoshift.StepHold, tc.steps, tc.hold)
		}
	}
}

func TestRampErrors(t *testing.T) {
	for _, tc := range []struct{ name, ramp, want string }{
		{"decreasing", "{steps: [50, 20, 100]}", "serve.yaml:19: resources[0].autoshift.ramp.steps: step 2 (20%) is not above step 1 (50%): steps must increase"},
		{"last not 100", "{steps: [5, 25]}", "resources[0].autoshift.ramp.steps: the last step is 25%: it must be 100 (the shift ends there)"},
		{"out of range", "{steps: [0, 100]}", "resources[0].autoshift.ramp.steps[0]: "},
		{"not a list", "{steps: 5}", "resources[0].autoshift.ramp.steps: "},
		{"hold too short", "{step_hold: 10ms}", "resources[0].autoshift.ramp.step_hold: "},
		{"unknown key", "{stepz: [5, 100]}", "resources[0].autoshift.ramp.stepz: unknown key"},
	} {
		doc := strings.Replace(base, "autoshift: {enabled: true}", "autoshift: {enabled: true, ramp: "+tc.ramp+"}", 1)
		_, err := Parse("serve.yaml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v\nwant it to contain %s", tc.name, err, tc.want)
		}
	}
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "aws.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ramp := range []string{"{enabled: true}", "{steps: [5, 100]}"} {
		doc := strings.Replace(string(data), "      recovery_hold: 5m", "      recovery_hold: 5m\n      ramp: "+ramp, 1)
		_, err := Parse("aws.yaml", []byte(doc))
		want := "resources[0].autoshift.ramp: a gradual return needs a front door that can weigh traffic (embedded, haproxy or xds); frontdoor type arc shifts all or nothing"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("arc with ramp %s: %v\nwant it to contain %s", ramp, err, want)
		}
	}
	doc := strings.Replace(string(data), "      recovery_hold: 5m", "      recovery_hold: 5m\n      ramp: {enabled: false}", 1)
	if _, err := Parse("aws.yaml", []byte(doc)); err != nil {
		t.Errorf("arc with ramp off: %v", err)
	}
}
