package command

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/actuator"
)

func TestRunsTheActionsCommandWithItsEnvironment(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	a := Actuator{Commands: map[actuator.Kind][]string{
		actuator.ExcludeZone: {"sh", "-c", `echo "$GRAYZONE_ACTION $GRAYZONE_RESOURCE $GRAYZONE_ZONE" >> "$0"`, log},
	}}
	if err := a.Apply(context.Background(), actuator.Action{Kind: actuator.ExcludeZone, Resource: "web", Zone: "az1"}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(log)
	if strings.TrimSpace(string(got)) != "exclude_zone web az1" {
		t.Errorf("command saw %q", got)
	}
}

// The action's ID and the leader's fencing token reach the command, so a
// control plane can take an action once and refuse a deposed leader's orders.
func TestPassesTheActionIDAndFencingToken(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	a := Actuator{Commands: map[actuator.Kind][]string{
		actuator.IncludeZone: {"sh", "-c", `echo "$GRAYZONE_ACTION_ID ${GRAYZONE_FENCE-unset}" >> "$0"`, log},
	}}
	act := actuator.Action{Kind: actuator.IncludeZone, Resource: "web", Zone: "az1", ID: "web/3/include_zone/az1"}
	if err := a.Apply(actuator.WithFence(context.Background(), 7), act); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(context.Background(), act); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(log)
	if want := "web/3/include_zone/az1 7\nweb/3/include_zone/az1 unset"; strings.TrimSpace(string(got)) != want {
		t.Errorf("command saw %q, want %q", got, want)
	}
}

func TestFailuresAndTimeouts(t *testing.T) {
	a := Actuator{Timeout: 200 * time.Millisecond, Commands: map[actuator.Kind][]string{
		actuator.ExcludeZone: {"sh", "-c", "echo 'asg: throttled' >&2; exit 3"},
		actuator.IncludeZone: {"sleep", "10"},
	}}
	err := a.Apply(context.Background(), actuator.Action{Kind: actuator.ExcludeZone, Zone: "az1"})
	if err == nil || !strings.Contains(err.Error(), "asg: throttled") {
		t.Errorf("failure: %v, want the command's last line", err)
	}
	start := time.Now()
	err = a.Apply(context.Background(), actuator.Action{Kind: actuator.IncludeZone, Zone: "az1"})
	if err == nil || !strings.Contains(err.Error(), "timed out") || time.Since(start) > 5*time.Second {
		t.Errorf("hung command: %v after %s", err, time.Since(start))
	}
	err = a.Apply(context.Background(), actuator.Action{Kind: actuator.RemoveExtra, Zone: "az1"})
	if !errors.Is(err, actuator.ErrUnsupported) {
		t.Errorf("unconfigured kind: %v", err)
	}
}

// TestOnlyNamedVariablesReachTheCommand: serve's AWS credentials do not
// reach an operator's command; the variables the configuration names do,
// and the action's GRAYZONE_ variables always.
func TestOnlyNamedVariablesReachTheCommand(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-secret")
	t.Setenv("AWS_PROFILE", "ops")
	t.Setenv("GRAYZONE_ACTION", "forged")
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "unset unset exclude_zone yes"},
		{[]string{"PATH", "AWS_PROFILE", "GRAYZONE_ACTION"}, "unset ops exclude_zone yes"},
	} {
		log := filepath.Join(t.TempDir(), "log")
		a := Actuator{Env: tc.env, Commands: map[actuator.Kind][]string{
			actuator.ExcludeZone: {"sh", "-c", `echo "${AWS_SECRET_ACCESS_KEY-unset} ${AWS_PROFILE-unset} $GRAYZONE_ACTION ${PATH:+yes}" >> "$0"`, log},
		}}
		if err := a.Apply(context.Background(), actuator.Action{Kind: actuator.ExcludeZone, Resource: "web", Zone: "az1"}); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(log); strings.TrimSpace(string(got)) != tc.want {
			t.Errorf("env %v: command saw %q, want %q", tc.env, got, tc.want)
		}
	}
}
