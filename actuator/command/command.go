// Package command is a control plane made of the operator's own commands:
// one command per control-plane action (exclude a zone, include it again,
// remove the extra capacity), for instance a script that calls
// `aws autoscaling` or `kubectl`. It is the adapter for every control plane
// grayzone has no native actuator for.
package command

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/grayzone/grayzone/actuator"
)

// Actuator runs Commands[kind] for each action. The command gets the
// action in its environment: GRAYZONE_ACTION (exclude_zone, include_zone,
// remove_extra), GRAYZONE_RESOURCE, GRAYZONE_ZONE, GRAYZONE_ACTION_ID (the
// same for every retry of one intent, also after a restart or a failover:
// an idempotency token) and GRAYZONE_FENCE (the leader's fencing token:
// refuse an order whose token is lower than one already seen). Exit status 0 means
// done; anything else is a failure the runbook retries with backoff, so a
// command must be idempotent.
//
// Of serve's own environment the command gets only the variables named in
// Env: serve may hold secrets (AWS credentials, tokens) that an operator's
// script has no business seeing, or logging.
type Actuator struct {
	Commands map[actuator.Kind][]string // argv per kind
	Timeout  time.Duration              // per run (default 30s)
	// Env names the variables of serve's environment passed on (those set);
	// nil means DefaultEnv.
	Env []string
}

// DefaultEnv is what a command gets of serve's environment unless the
// configuration names others: enough to find programs and a home, no secrets.
var DefaultEnv = []string{"PATH", "HOME", "LANG", "TZ"}

// environ is the command's environment: the named variables of serve's,
// then the action's GRAYZONE_ variables.
func (a Actuator) environ(ctx context.Context, act actuator.Action) []string {
	names := a.Env
	if names == nil {
		names = DefaultEnv
	}
	var env []string
	for _, n := range names {
		if v, ok := os.LookupEnv(n); ok && !strings.HasPrefix(n, "GRAYZONE_") {
			env = append(env, n+"="+v)
		}
	}
	env = append(env, "GRAYZONE_ACTION="+string(act.Kind), "GRAYZONE_RESOURCE="+act.Resource, "GRAYZONE_ZONE="+act.Zone,
		"GRAYZONE_ACTION_ID="+act.ID)
	if f, ok := actuator.FenceFrom(ctx); ok {
		env = append(env, "GRAYZONE_FENCE="+strconv.FormatUint(f, 10))
	}
	return env
}

// Apply implements actuator.Actuator.
func (a Actuator) Apply(ctx context.Context, act actuator.Action) error {
	argv, ok := a.Commands[act.Kind]
	if !ok || len(argv) == 0 {
		return fmt.Errorf("command: %s: %w", act, actuator.ErrUnsupported)
	}
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = a.environ(ctx, act)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A hung control plane must not hold the runbook: the timeout kills the
	// command, and WaitDelay bounds waiting for children that keep its pipes.
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		msg := strings.Join(strings.Fields(lastLine(out.String())), " ")
		if ctx.Err() != nil {
			return fmt.Errorf("command %q: %s: timed out after %s", argv[0], act, timeout)
		}
		return fmt.Errorf("command %q: %s: %w: %s", argv[0], act, err, msg)
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
