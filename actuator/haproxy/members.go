package haproxy

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// SetTargets makes a Layout's backends (the regional one and each zone's)
// hold exactly targets, for fleets that change while HAProxy runs (the
// lab's instance group launches replacements and terminates them): a new
// target is added with `add server` (checked like its backend's other
// servers) and put in its zone's state, ready or shifted; a gone one is put
// in maintenance, its sessions shut, and deleted. The actuator's zone map
// follows, so shifts cover the new servers. A server HAProxy cannot delete
// yet (connections still attached) is retried on the next call.
func (a *Actuator) SetTargets(ctx context.Context, l Layout, targets []Target) error {
	backends := []string{RegionalBackend}
	for _, z := range l.sortedZonal() {
		backends = append(backends, ZonalBackend(z))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for _, b := range backends {
		rows, err := a.o.Runtime.ServersState(ctx, b)
		if err != nil {
			return err
		}
		want := map[string]Target{}
		for _, t := range targets {
			if b == RegionalBackend || b == ZonalBackend(t.Zone) {
				want[t.ID] = t
			}
		}
		for _, t := range targets {
			if _, ok := want[t.ID]; !ok {
				continue
			}
			if _, ok := find(rows, t.ID); ok {
				continue
			}
			check := ""
			if l.HealthPath != "" {
				check = " check"
			}
			state := "ready"
			if b == RegionalBackend && a.shifted[t.Zone] {
				state = a.o.ShiftState
			}
			// weight 100 as in the generated haproxy.cfg: a server added at
			// run time does not inherit default-server.
			out, err := a.o.Runtime.Do(ctx, fmt.Sprintf("add server %s/%s %s weight 100%s", b, t.ID, t.Addr, check))
			if err == nil && !strings.Contains(out, "New server registered") {
				err = fmt.Errorf("haproxy: add server %s/%s: %s", b, t.ID, strings.Join(strings.Fields(out), " "))
			}
			if err == nil && check != "" {
				err = a.o.Runtime.Command(ctx, fmt.Sprintf("enable health %s/%s", b, t.ID))
			}
			if err == nil {
				err = a.o.Runtime.SetState(ctx, state, Server{Backend: b, Name: t.ID})
			}
			keep(err)
		}
		for _, r := range rows {
			if _, ok := want[r.Server]; ok {
				continue
			}
			s := Server{Backend: b, Name: r.Server}
			err := a.o.Runtime.SetState(ctx, StateMaint, s)
			if err == nil {
				err = a.o.Runtime.Command(ctx, "shutdown sessions server "+s.String())
			}
			if err == nil {
				var out string
				out, err = a.o.Runtime.Do(ctx, "del server "+s.String())
				if err == nil && !strings.Contains(out, "Server deleted") {
					err = fmt.Errorf("haproxy: del server %s: %s", s, strings.Join(strings.Fields(out), " "))
				}
			}
			keep(err)
		}
	}
	zones := map[string][]Server{}
	for _, t := range targets {
		zones[t.Zone] = append(zones[t.Zone], Server{Backend: RegionalBackend, Name: t.ID})
	}
	for z := range a.o.Zones {
		if _, ok := zones[z]; !ok {
			zones[z] = nil // a zone without servers stays known
		}
	}
	a.o.Zones = zones
	return firstErr
}

// Command runs commands whose success is an empty answer (set server, set
// weight, enable health) in one connection; any answer is an error message.
func (r Runtime) Command(ctx context.Context, cmds ...string) error {
	out, err := r.Do(ctx, cmds...)
	if err != nil {
		return err
	}
	if msg := strings.Join(strings.Fields(out), " "); msg != "" {
		return fmt.Errorf("haproxy: %s: %s", cmds[0], msg)
	}
	return nil
}

func (l Layout) sortedZonal() []string {
	out := make([]string, 0, len(l.Zonal))
	for z := range l.Zonal {
		out = append(out, z)
	}
	slices.Sort(out)
	return out
}
