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
type Actuator struct {
	Commands map[actuator.Kind][]string // argv per kind
	Timeout  time.Duration              // per run (default 30s)
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
	cmd.Env = append(os.Environ(),
		"GRAYZONE_ACTION="+string(act.Kind), "GRAYZONE_RESOURCE="+act.Resource, "GRAYZONE_ZONE="+act.Zone,
		"GRAYZONE_ACTION_ID="+act.ID)
	if f, ok := actuator.FenceFrom(ctx); ok {
		cmd.Env = append(cmd.Env, "GRAYZONE_FENCE="+strconv.FormatUint(f, 10))
	}
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
