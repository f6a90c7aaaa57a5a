package service_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/internal/freeport"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/store"
)

// shardedConfig writes replica name's configuration: n resources svc-000..
// sharing the backends be (two per zone), each with its own embedded front
// door on the ports given (four per resource, distinct among all the
// replicas'), autoshift on (waiting for approval if approval is set);
// sharded replicas on storeURL.
func shardedConfig(t *testing.T, storeURL, name string, n int, lease time.Duration, approval bool, be []string, ports []int) string {
	t.Helper()
	addr := func() string {
		p := ports[0]
		ports = ports[1:]
		return fmt.Sprintf("127.0.0.1:%d", p)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "store: %s\nreplica: {name: %s, lease: %s, sharded: true}\n", storeURL, name, lease)
	b.WriteString("auth: {tokens: [test-token-0123456789abcdef], open_reads: true}\nresources:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: svc-%03d\n    zones: [z1, z2, z3]\n", i)
		fmt.Fprintf(&b, "    frontdoor:\n      type: embedded\n      regional: %s\n      zonal: {z1: %s, z2: %s, z3: %s}\n",
			addr(), addr(), addr(), addr())
		b.WriteString("      health_check: {interval: 5s, timeout: 1s}\n      targets:\n")
		for j, a := range be {
			fmt.Fprintf(&b, "        - {id: z%d-%d, zone: z%d, addr: %s}\n", j/2+1, j%2+1, j/2+1, a)
		}
		if approval {
			b.WriteString("    autoshift: {enabled: true, approval: true, min_interval: 0s, expires_in: 1h}\n")
		} else {
			b.WriteString("    autoshift: {enabled: true, min_interval: 0s, expires_in: 1h}\n")
		}
	}
	p := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// startShardedReplicas starts one sharded grayzone serve per name on a
// throwaway PostgreSQL, with n resources (shardedConfig; approval, when
// set, makes autoshift wait for an approval), and on failure logs each
// replica's log; a data race in any of them (GRAYZONE_TEST_RACE=1 builds
// them with the race detector) fails the test.
func startShardedReplicas(t *testing.T, n int, lease time.Duration, approval bool, names ...string) []*server {
	t.Helper()
	url := throwawayPostgres(t)
	be := backends(t, 6)
	ports, err := freeport.Ports(len(names) * 4 * n)
	if err != nil {
		t.Fatal(err)
	}
	var all []*server
	t.Cleanup(func() {
		for _, s := range all {
			if strings.Contains(s.logs.String(), "WARNING: DATA RACE") {
				t.Errorf("a data race in %s", s.addr)
			}
		}
		if t.Failed() {
			for _, s := range all {
				t.Logf("log of %s (%s):\n%s", s.addr, strings.Join(s.args, " "), s.logs.String())
			}
		}
	})
	for i, name := range names {
		p := shardedConfig(t, url, name, n, lease, approval, be, ports[i*4*n:(i+1)*4*n])
		all = append(all, startServe(t, "--config", p))
	}
	return all
}

// split returns, per replica, the resources it says it leads, and whether
// each of the n resources is led by exactly one of them.
func split(t *testing.T, n int, replicas ...*server) (map[*server][]string, bool) {
	t.Helper()
	out := map[*server][]string{}
	leaders := map[string]int{}
	for _, s := range replicas {
		v, ok := s.leader(t)
		if !ok {
			return nil, false
		}
		for res, l := range v.Resources {
			if l.Leading {
				out[s] = append(out[s], res)
				leaders[res]++
			}
		}
	}
	for i := range n {
		if leaders[fmt.Sprintf("svc-%03d", i)] != 1 {
			return out, false
		}
	}
	return out, true
}

// TestShardedReplicasSplitTheResourcesAndMoveThemOnKill: three grayzone
// serve processes on one PostgreSQL with 30 resources lead 10 each (a third
// of GRAYZONE_TEST_SHARDED_RESOURCES when set); a
// mutation on a replica that does not lead its resource is sent to the one
// that does; a fault in one resource's zone is shifted once, by its leader;
// kill -9 of that leader moves its resources to the other two within the
// lease, and the shift stays the only one.
func TestShardedReplicasSplitTheResourcesAndMoveThemOnKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three grayzone serve processes on PostgreSQL")
	}
	t.Parallel()
	// GRAYZONE_TEST_SHARDED_RESOURCES=300 runs the fleet (slower).
	n := int(envInt(t, "GRAYZONE_TEST_SHARDED_RESOURCES", 30))
	third := (n + 2) / 3
	// A short lease for a short test; at fleet size, on a loaded machine,
	// the default's margins.
	lease := failoverLease
	if n > 30 {
		lease = 10 * time.Second
	}
	all := startShardedReplicas(t, n, lease, false, "a", "b", "c")
	var by map[*server][]string
	eventually(t, 60*time.Second, "three replicas leading a third of the resources each", func() bool {
		var ok bool
		by, ok = split(t, n, all...)
		for _, s := range all {
			ok = ok && len(by[s]) >= n-2*third && len(by[s]) <= third
		}
		return ok
	})

	t.Logf("split: a %d, b %d, c %d", len(by[all[0]]), len(by[all[1]]), len(by[all[2]]))
	if v, _ := all[0].leader(t); !v.Sharded || v.Replicas != 3 {
		t.Errorf("GET /v1/leader: sharded %v, %d replicas, want 3", v.Sharded, v.Replicas)
	}
	if m, want := get(t, all[0].url()+"/metrics"), fmt.Sprintf(`grayzone_replica_resources_led{replica="a"} %d`, len(by[all[0]])); !strings.Contains(m, want) {
		t.Errorf("/metrics lacks %s:\n%s", want, grep(m, "grayzone_replica"))
	}
	// The fault's resource, its leader, and another replica to talk to.
	const target = "svc-007"
	var lead, other *server
	for _, s := range all {
		if strings.Contains(strings.Join(by[s], ","), target) {
			lead = s
		} else if other == nil {
			other = s
		}
	}
	// A mutation on a replica that does not lead the resource: 307 to the one that does.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, other.url()+"/v1/shifts", strings.NewReader(`{"resource":"`+target+`","away_from":"z2","expires_in":"1h"}`))
	req.Header.Set("Authorization", "Bearer test-token-0123456789abcdef")
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := lead.url() + "/v1/shifts"; resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != want {
		t.Fatalf("POST /v1/shifts for %s on a non-leader: %d Location %q, want 307 to %s", target, resp.StatusCode, resp.Header.Get("Location"), want)
	}

	// z1 of svc-007 fails, reported to the non-leader (the client follows
	// the redirect): its leader shifts it, once.
	c := api.NewClient(other.url(), "test-token-0123456789abcdef")
	zones := []string{"z1", "z2", "z3"}
	ctx := context.Background()
	eventually(t, 60*time.Second, "the shift of "+target, func() bool {
		_ = observeResource(c, target, zones, "z1")
		list, err := c.Shifts(ctx, shift.ListFilter{Resource: target})
		return err == nil && len(list) > 0
	})
	started := func(s *server) []store.AuditEntry {
		es, err := api.NewClient(s.url(), "").Audit(ctx, store.AuditQuery{Resource: target})
		if err != nil {
			t.Fatal(err)
		}
		var out []store.AuditEntry
		for _, e := range es {
			if e.Kind == "shift_started" {
				out = append(out, e)
			}
		}
		return out
	}
	if es := started(other); len(es) != 1 {
		t.Fatalf("%d shift_started entries for %s, want 1: %+v", len(es), target, es)
	}

	// kill -9 of the leader of svc-007: the other two lead them all within the lease.
	lead.kill()
	killed := time.Now()
	var rest []*server
	for _, s := range all {
		if s != lead {
			rest = append(rest, s)
		}
	}
	eventually(t, 4*lease, "the other two replicas leading all resources", func() bool {
		_ = observeResource(c, target, zones, "z1") // the fault goes on
		by, ok := split(t, n, rest...)
		return ok && len(by[rest[0]])+len(by[rest[1]]) == n
	})
	took := time.Since(killed)
	t.Logf("the killed replica's resources moved %s after kill -9 (lease %s)", took.Round(time.Millisecond), lease)
	if took > lease+2*time.Second {
		t.Errorf("the resources moved %s after the kill, lease %s", took, lease)
	}
	// The fault goes on; the new leader resumes the shifted runbook: still one shift.
	for range 20 {
		_ = observeResource(c, target, zones, "z1")
		time.Sleep(100 * time.Millisecond)
	}
	for _, s := range rest {
		list, err := api.NewClient(s.url(), "").Shifts(ctx, shift.ListFilter{Resource: target})
		if err != nil || len(list) != 1 || list[0].AwayFrom != "z1" || list[0].Status != shift.Active {
			t.Fatalf("shifts of %s on %s after the move: %+v %v, want the one active shift away from z1", target, s.addr, list, err)
		}
		if es := started(s); len(es) != 1 {
			t.Fatalf("%d shift_started entries for %s after the move, want 1", len(es), target)
		}
	}
	// No other resource was shifted.
	list, err := api.NewClient(rest[0].url(), "").Shifts(ctx, shift.ListFilter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("shifts: %+v %v, want only %s's", list, err, target)
	}
}
