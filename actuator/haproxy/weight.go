package haproxy

import (
	"context"
	"fmt"

	"github.com/grayzone/grayzone/actuator"
)

// SetWeight implements actuator.Weigher: a shifted zone's servers get
// percent of their configured weight (HAProxy's `set weight B/S N%`, relative
// to the weight in haproxy.cfg) and are made ready, so the zone takes that
// share of new requests while its shift stays in force; 0 puts them back in
// the shift state at their full weight. HAProxy rounds the weight down: with
// the default server weight of 1 every step below 100 % is 0, so give the
// regional backend's servers weight 100 (grayzone's generated layout does).
// A zone that is not shifted ignores it; ending the shift resets it.
func (a *Actuator) SetWeight(ctx context.Context, zone string, percent int) error {
	if err := actuator.CheckWeight(percent); err != nil {
		return fmt.Errorf("haproxy: zone %s: %w", zone, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	servers, ok := a.o.Zones[zone]
	if !ok {
		return fmt.Errorf("haproxy: unknown zone %q", zone)
	}
	if !a.shifted[zone] || a.weight[zone] == percent {
		return nil
	}
	a.weight[zone] = percent
	cmds := weightCmds(servers, percent, a.o.ShiftState)
	if err := a.exchange(ctx, nil, func([]string) ([]string, error) { return cmds, nil }); err != nil {
		return err
	}
	a.o.Log.Info("haproxy zone weight set", "runtime_api", a.o.Runtime.Addr, "zone", zone, "percent", percent, "servers", names(servers))
	return nil
}

// weightCmds sets the servers to percent of their weight and ready (the
// weight first, so no server takes a full share in between), or, at 0, back
// to the shift state and their full weight.
func weightCmds(servers []Server, percent int, shiftState string) []string {
	var cmds []string
	for _, s := range servers {
		if percent == 0 {
			cmds = append(cmds, fmt.Sprintf("set server %s/%s state %s", s.Backend, s.Name, shiftState),
				fmt.Sprintf("set weight %s/%s 100%%", s.Backend, s.Name))
			continue
		}
		cmds = append(cmds, fmt.Sprintf("set weight %s/%s %d%%", s.Backend, s.Name, percent),
			fmt.Sprintf("set server %s/%s state ready", s.Backend, s.Name))
	}
	return cmds
}

// weighCmds sets each server back to its zone's weight (a reload forgot
// it); mu held.
func (a *Actuator) weighCmds(servers []Server) []string {
	if len(servers) == 0 {
		return nil
	}
	zoneOf := map[Server]string{}
	for z, ss := range a.o.Zones {
		for _, s := range ss {
			zoneOf[s] = z
		}
	}
	cmds := make([]string, len(servers))
	for i, s := range servers {
		cmds[i] = fmt.Sprintf("set weight %s/%s %d%%", s.Backend, s.Name, a.weight[zoneOf[s]])
	}
	return cmds
}
