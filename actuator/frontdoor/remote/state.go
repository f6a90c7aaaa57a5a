// Package remote runs grayzone's embedded front door as its own process,
// `grayzone frontdoor`, fed by serve over xDS: the targets of each zone,
// their health as serve's checks see it, and the zonal shift in force with
// its expiry. The front door keeps the last state it received on disk and
// goes on routing with it while serve is down, restarting or unreachable,
// for as long as that lasts (static stability): a shift stays in force
// until its expiry, then ends on the front door's own clock.
package remote

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/actuator/xds"
)

// State is the routing the front door received from serve.
type State struct {
	Resource string
	// Epoch is the leadership epoch of the serve that sent it (0: none
	// given); the front door refuses a state of an older epoch.
	Epoch   uint64
	Targets []Target
	// Shifted maps each shifted zone to the shift's expiry (zero: none).
	Shifted map[string]time.Time
	// Weights maps a shifted zone returning at a weight to it (percent of
	// a full zone's share; absent: 0, the shift fully in force).
	Weights    map[string]int `json:",omitempty"`
	ReceivedAt time.Time
}

// Target is one backend and its health as serve last saw it.
type Target struct {
	ID, Zone, Addr string
	Healthy        bool
}

// FromAssignments reads the state from the resource's regional assignment
// (zones not shifted) and each zone's own assignment (targets, health, and
// the shift's mark: its expiry and a gradual return's weight), as
// actuator/xds publishes them.
func FromAssignments(resource string, zones []string, clas map[string]*endpoint.ClusterLoadAssignment, now time.Time) (State, error) {
	st := State{Resource: resource, Shifted: map[string]time.Time{}, ReceivedAt: now}
	regional, ok := clas[resource]
	if !ok {
		return st, fmt.Errorf("no assignment %q", resource)
	}
	inRegional := map[string]bool{}
	for _, l := range regional.GetEndpoints() {
		inRegional[l.GetLocality().GetZone()] = true
	}
	for _, z := range zones {
		cla, ok := clas[xds.ZonalName(resource, z)]
		if !ok {
			return st, fmt.Errorf("no assignment %q", xds.ZonalName(resource, z))
		}
		var expires time.Time
		marked, weight := false, 0
		for _, l := range cla.GetEndpoints() {
			for _, ep := range l.GetLbEndpoints() {
				sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
				t := Target{ID: ep.GetEndpoint().GetHostname(), Zone: z, Addr: fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()),
					Healthy: ep.GetHealthStatus() != core.HealthStatus_UNHEALTHY}
				if t.ID == "" {
					t.ID = t.Addr
				}
				st.Targets = append(st.Targets, t)
				if md := ep.GetMetadata().GetFilterMetadata()[xds.MetadataKey]; md != nil {
					marked = marked || md.GetFields()["shifted"].GetBoolValue()
					if w := int(md.GetFields()["weight"].GetNumberValue()); w > 0 && w <= 100 {
						weight = w
					}
					if v := md.GetFields()["expires_at"].GetStringValue(); v != "" {
						if at, err := time.Parse(time.RFC3339Nano, v); err == nil {
							expires = at
						}
					}
				}
			}
		}
		// A zone returning at a weight is in the regional assignment again,
		// and still shifted: its mark says so.
		if len(cla.GetEndpoints()) > 0 && (!inRegional[z] || (marked && weight > 0)) {
			st.Shifted[z] = expires
			if weight > 0 {
				if st.Weights == nil {
					st.Weights = map[string]int{}
				}
				st.Weights[z] = weight
			}
		}
	}
	return st, nil
}

// ShiftedAt reports whether the zone is shifted at now: a shift whose
// expiry has passed is over, whether or not serve has said so.
func (s State) ShiftedAt(zone string, now time.Time) bool {
	exp, ok := s.Shifted[zone]
	return ok && (exp.IsZero() || now.Before(exp))
}

// Apply makes the table route as the state says at now: serve's healthy
// targets, and the shifts still in force.
func (s State) Apply(t *frontdoor.Table, now time.Time) error {
	want := map[string]Target{}
	for _, tg := range s.Targets {
		if tg.Healthy {
			want[tg.ID] = tg
		}
	}
	have := map[string]frontdoor.Target{}
	for _, ts := range t.Targets() {
		have[ts.ID] = ts.Target
	}
	for id, old := range have {
		if tg, ok := want[id]; !ok || tg.Addr != old.Addr || tg.Zone != old.Zone {
			t.RemoveTarget(id)
			delete(have, id)
		}
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if _, ok := have[id]; ok {
			continue
		}
		tg := want[id]
		if err := t.AddTarget(frontdoor.Target{ID: tg.ID, Zone: tg.Zone, Addr: tg.Addr}); err != nil {
			return err
		}
	}
	for _, z := range t.Zones() {
		shifted := s.ShiftedAt(z, now)
		if err := t.SetShifted(z, shifted); err != nil {
			return err
		}
		if shifted {
			if err := t.SetWeight(z, s.Weights[z]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Save writes the state to path atomically: a crash leaves the old file or
// the new one, never a torn one.
func (s State) Save(path string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("frontdoor: save state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("frontdoor: save state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("frontdoor: save state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("frontdoor: save state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("frontdoor: save state: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // the rename itself survives a power cut
		d.Close()
	}
	return nil
}

// Load reads a state saved by Save; ok is false when there is none.
func Load(path, resource string) (State, bool, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("frontdoor: read state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return State{}, false, fmt.Errorf("frontdoor: %s: %w", path, err)
	}
	if s.Resource != resource {
		return State{}, false, fmt.Errorf("frontdoor: %s holds the state of resource %q, not %q", path, s.Resource, resource)
	}
	return s, true, nil
}

func (s State) String() string {
	var sh []string
	for z, exp := range s.Shifted {
		one := z
		if !exp.IsZero() {
			one += " until " + exp.Format(time.RFC3339)
		}
		if w := s.Weights[z]; w > 0 {
			one += fmt.Sprintf(" (returning: %d %%)", w)
		}
		sh = append(sh, one)
	}
	slices.Sort(sh)
	return fmt.Sprintf("epoch %d, %d targets, shifted: [%s]", s.Epoch, len(s.Targets), strings.Join(sh, ", "))
}
