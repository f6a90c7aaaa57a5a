package service_test

// Two grayzone serve processes on one throwaway PostgreSQL: the leader is
// killed with SIGKILL during a shift and during a runbook step, and the
// follower must take over within the lease, lose no shift, take no action
// twice, and never let the old leader's orders follow its own.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/lab/database"
	"github.com/grayzone/grayzone/lab/dblink"
	"github.com/grayzone/grayzone/server/api"
)

// failoverLease is the replicas' lease in these tests (the default is 10 s;
// shorter keeps the test short, the mechanism is the same).
const failoverLease = 3 * time.Second

var pgDatabases atomic.Int64

var (
	pgOnce    sync.Once
	pgCluster *database.Cluster
	pgErr     error
)

// throwawayPostgres returns the URL of a fresh database in the package's
// throwaway PostgreSQL cluster, started on first use (TestMain stops it).
func throwawayPostgres(t *testing.T) string {
	t.Helper()
	pgOnce.Do(func() {
		if pgErr = database.CheckPostgres(); pgErr == nil {
			pgCluster, pgErr = database.StartPostgres(context.Background(), database.PostgresOptions{})
		}
	})
	if pgErr != nil {
		if os.Getenv("GRAYZONE_TEST_POSTGRES") == "require" {
			t.Fatalf("postgresql: %v", pgErr)
		}
		t.Skipf("postgresql not available: %v", pgErr)
	}
	name := fmt.Sprintf("grayzone_%d", pgDatabases.Add(1))
	admin, err := sql.Open("pgx", pgCluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	return strings.Replace(pgCluster.URL(), "/"+database.PostgresDatabase+"?", "/"+name+"?", 1)
}

func stopPostgres() {
	if pgCluster != nil {
		_ = pgCluster.Stop()
	}
}

// replicaConfig writes a replica's configuration: the shared store and
// backends, its own front door and canaries.
func replicaConfig(t *testing.T, storeURL, name string, be []string, extra string) string {
	t.Helper()
	return writeConfig(t, name, fmt.Sprintf("store: %s\nreplica: {name: %s, lease: %s}\n", storeURL, name, failoverLease), be, extra)
}

// startPair starts replica a on storeA and, once a leads, replica b on storeB
// (the same database, possibly by another path), and waits until b knows a
// leads. It returns a's epoch.
func startPair(t *testing.T, storeA, storeB, extra string) (a, b *server, epochA uint64) {
	t.Helper()
	be := backends(t, 6)
	a = startServe(t, "--config", replicaConfig(t, storeA, "a", be, extra))
	epochA, _ = waitLeading(t, a, 10*time.Second)
	b = startServe(t, "--config", replicaConfig(t, storeB, "b", be, extra))
	eventually(t, 5*time.Second, "b to learn who leads", func() bool {
		v, _ := b.leader(t)
		return v.Address == a.addr
	})
	return a, b, epochA
}

type leaderView struct {
	Replica string `json:"replica"`
	Leading bool   `json:"leading"`
	Epoch   uint64 `json:"epoch"`
	Address string `json:"address"`
	// Sharded replicas (replica.sharded): each resource's leader.
	Sharded   bool `json:"sharded"`
	Replicas  int  `json:"replicas"`
	Resources map[string]struct {
		Leader  string `json:"leader"`
		Address string `json:"address"`
		Epoch   uint64 `json:"epoch"`
		Leading bool   `json:"leading"`
	} `json:"resources"`
}

func (s *server) leader(t *testing.T) (leaderView, bool) {
	t.Helper()
	resp, err := http.Get(s.url() + "/v1/leader")
	if err != nil {
		return leaderView{}, false
	}
	defer resp.Body.Close()
	var v leaderView
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return leaderView{}, false
	}
	return v, true
}

// waitLeading waits until s leads (and has taken over) and returns its epoch.
func waitLeading(t *testing.T, s *server, within time.Duration) (uint64, time.Duration) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if v, ok := s.leader(t); ok && v.Leading {
			// Mutations pass once the loop has taken over: probe with a harmless one.
			return v.Epoch, time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no leadership within %s; log:\n%s", within, s.logs.String())
	return 0, 0
}

func TestFailoverKillLeaderDuringShift(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two grayzone serve processes on PostgreSQL")
	}
	t.Parallel()
	url := throwawayPostgres(t)
	a, b, epochA := startPair(t, url, url, "")
	if v, _ := b.leader(t); v.Leading {
		t.Fatalf("b leads beside a: %+v", v)
	}

	// A mutation sent to the follower is redirected to the leader (307, the
	// leader named in a header), and the client follows it.
	req, _ := http.NewRequest(http.MethodPost, b.url()+"/v1/shifts", strings.NewReader(`{"resource":"web","away_from":"z2","expires_in":"1h","comment":"failover test"}`))
	req.Header.Set("Authorization", "Bearer test-token-0123456789abcdef")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("X-Grayzone-Leader") != a.addr || resp.Header.Get("Location") != a.url()+"/v1/shifts" {
		t.Fatalf("POST to the follower: %d leader %q location %q, want 307 to %s", resp.StatusCode, resp.Header.Get("X-Grayzone-Leader"), resp.Header.Get("Location"), a.addr)
	}
	cb := api.NewClient(b.url(), "test-token-0123456789abcdef")
	ctx := context.Background()
	sh, err := cb.StartShift(ctx, api.StartShiftRequest{Resource: "web", AwayFrom: "z2", ExpiresIn: "1h", Comment: "failover test"})
	if err != nil {
		va, _ := a.leader(t)
		t.Fatalf("shift through the follower: %v\nleader %+v log:\n%s", err, va, a.logs.String())
	}
	// The follower's own front door follows the shared state.
	eventually(t, 5*time.Second, "the follower's front door to carry the shift", func() bool {
		st, err := cb.Status(ctx)
		return err == nil && st.Resources[0].ActiveShift != nil && st.Resources[0].ActiveShift.ID == sh.ID && st.Resources[0].Zones[1].Shifted
	})

	a.kill()
	killed := time.Now()
	epochB, _ := waitLeading(t, b, 2*failoverLease)
	took := time.Since(killed)
	t.Logf("b leads with epoch %d (a had %d) %s after a was killed; lease %s", epochB, epochA, took.Round(time.Millisecond), failoverLease)
	if took > failoverLease {
		t.Errorf("takeover took %s, more than the lease %s", took, failoverLease)
	}
	if epochB <= epochA {
		t.Errorf("b's epoch %d is not above a's %d", epochB, epochA)
	}
	got, err := cb.Shift(ctx, sh.ID)
	if err != nil || got.Status != shift.Active || !got.ExpiresAt.Equal(sh.ExpiresAt) {
		t.Fatalf("after failover the shift is %+v %v, want it ACTIVE as it was", got, err)
	}
	if m := get(t, b.url()+"/metrics"); !strings.Contains(m, `grayzone_replica_leading{replica="b"} 1`) ||
		!strings.Contains(m, fmt.Sprintf(`grayzone_replica_epoch{replica="b"} %d`, epochB)) {
		t.Errorf("b's metrics do not show it leading with epoch %d:\n%s", epochB, grep(m, "grayzone_replica"))
	}
	// The new leader takes mutations itself.
	if _, err := cb.CancelShift(ctx, sh.ID); err != nil {
		t.Fatalf("cancel on the new leader: %v", err)
	}

	// a comes back as a follower; b shuts down cleanly (SIGTERM) and
	// releases the lease, so a leads again at its next attempt, well within
	// the lease.
	a = startServe(t, a.args...)
	eventually(t, 5*time.Second, "a to follow b", func() bool {
		v, _ := a.leader(t)
		return v.Address == b.addr && !v.Leading
	})
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	epochA2, _ := waitLeading(t, a, 2*failoverLease)
	t.Logf("after b's clean shutdown a leads with epoch %d in %s", epochA2, time.Since(stopped).Round(time.Millisecond))
	if took := time.Since(stopped); took > failoverLease/2 {
		t.Errorf("takeover after a clean shutdown took %s: the lease was not released", took)
	}
	if epochA2 <= epochB {
		t.Errorf("a's new epoch %d is not above b's %d", epochA2, epochB)
	}
}

func TestFailoverKillLeaderDuringRunbookStep(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two grayzone serve processes on PostgreSQL")
	}
	t.Parallel()
	url := throwawayPostgres(t)
	cp := newControlPlane(t)
	// Each control-plane command takes 2 s: the kill lands in the middle of one.
	if err := os.WriteFile(filepath.Join(cp.dir, "delay"), []byte("2"), 0o644); err != nil {
		t.Fatal(err)
	}
	extra := "    autoshift: {enabled: true, min_interval: 0s, expires_in: 1h, control_plane_after: 1s, recovery_hold: 2s}\n" + cp.yaml()
	a, b, epochA := startPair(t, url, url, extra)
	ca := api.NewClient(a.url(), "test-token-0123456789abcdef")
	cb := api.NewClient(b.url(), "test-token-0123456789abcdef")
	ctx := context.Background()
	zones := []string{"z1", "z2", "z3"}

	// z1 fails; the leader shifts it away and starts excluding it.
	eventually(t, 2*time.Minute, "the leader to start excluding z1", func() bool {
		_ = observe(ca, zones, "z1")
		for _, c := range cp.read(t, "calls.log") {
			if c.kind == "exclude_zone" {
				return true
			}
		}
		return false
	})
	st, err := cb.Status(ctx)
	if err != nil || st.Resources[0].ActiveShift == nil || st.Resources[0].ActiveShift.AwayFrom != "z1" {
		t.Fatalf("follower's view of the shift before the kill: %+v %v", st, err)
	}
	shiftID := st.Resources[0].ActiveShift.ID
	a.kill() // mid-exclusion: its command is still running
	killed := time.Now()
	epochB, _ := waitLeading(t, b, 2*failoverLease)
	t.Logf("b leads with epoch %d (a had %d) %s after the kill", epochB, epochA, time.Since(killed).Round(time.Millisecond))
	if took := time.Since(killed); took > failoverLease+time.Second {
		t.Errorf("takeover took %s, lease %s", took, failoverLease)
	}

	// b finishes the runbook: exclusion, then (z1 healthy) inclusion, end of shift, removal of the extra capacity.
	eventually(t, 2*time.Minute, "b to finish the runbook", func() bool {
		_ = observe(cb, zones, "")
		st, err := cb.Status(ctx)
		return err == nil && st.Resources[0].Phase == "idle" && st.Resources[0].ActiveShift == nil && len(st.Resources[0].Pending) == 0
	})
	time.Sleep(2500 * time.Millisecond) // a's orphaned command, if any, has finished

	sh, err := cb.Shift(ctx, shiftID)
	if err != nil || sh.Status != shift.Canceled || sh.EndedBy == "" {
		t.Fatalf("the shift a started: %+v %v, want ended by b's runbook", sh, err)
	}
	list, _ := cb.Shifts(ctx, shift.ListFilter{})
	if len(list) != 1 {
		t.Errorf("%d shifts, want the one (no second shift after failover): %+v", len(list), list)
	}
	effects := cp.read(t, "effects.log")
	count := map[string]int{}
	var lastFence uint64
	for _, e := range effects {
		count[e.kind]++
		if e.fence < lastFence {
			t.Errorf("effect %s with fencing token %d after one with %d: two leaders' orders", e.id, e.fence, lastFence)
		}
		lastFence = e.fence
	}
	if count["exclude_zone"] != 1 || count["include_zone"] != 1 || count["remove_extra"] != 1 {
		t.Errorf("effects %v, want each control-plane action once: %+v", count, effects)
	}
	for _, c := range cp.read(t, "calls.log") {
		t.Logf("control plane: %s %s %s fence %d by pid %s", c.what, c.kind, c.id, c.fence, c.parent)
		if c.kind == "exclude_zone" && c.what == "call" && c.fence != epochA && c.fence != epochB {
			t.Errorf("exclusion ordered under epoch %d, neither a's %d nor b's %d", c.fence, epochA, epochB)
		}
		if c.kind != "exclude_zone" && c.fence != epochB {
			t.Errorf("%s ordered under epoch %d, want b's %d", c.kind, c.fence, epochB)
		}
	}
}

// A leader cut off from the database (every packet to it swallowed, through
// the lab's fault-injecting database link) stops acting before its lease can
// expire, so the follower that then takes over never leads beside it.
func TestFailoverLeaderCutOffFromTheDatabaseStepsDownFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two grayzone serve processes on PostgreSQL")
	}
	t.Parallel()
	url := throwawayPostgres(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	link, err := dblink.New(ctx, "replica-a", u.Host, dblink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	a, b, _ := startPair(t, strings.Replace(url, u.Host, link.Addr(), 1), url, "")

	if err := link.Set([]dblink.Fault{{Kind: dblink.KindBlackhole}}); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	var aStopped, bLeads time.Duration
	for time.Since(cut) < 3*failoverLease && bLeads == 0 {
		va, _ := a.leader(t)
		vb, _ := b.leader(t)
		if !va.Leading && aStopped == 0 {
			aStopped = time.Since(cut)
		}
		if vb.Leading {
			bLeads = time.Since(cut)
			if va.Leading {
				t.Fatalf("a and b both lead %s after the cut", bLeads)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("cut at 0: a stopped acting at %s, b leads at %s (lease %s)", aStopped.Round(time.Millisecond), bLeads.Round(time.Millisecond), failoverLease)
	if aStopped == 0 || bLeads == 0 || aStopped >= bLeads {
		t.Fatalf("a stopped at %s, b leads at %s: want a to stop first", aStopped, bLeads)
	}
	// Measured from the cut, which the link applies to calls already on the
	// wire a little late; the follower's bound is from the leader's last
	// renewal, so allow a lease of slack here.
	if bLeads > 2*failoverLease {
		t.Errorf("b took %s to lead after the cut, lease %s", bLeads, failoverLease)
	}
	// The cut-off replica takes no mutation: it sends it to b, or refuses it.
	resp, err := http.Post(a.url()+"/v1/shifts", "application/json", strings.NewReader(`{"resource":"web","away_from":"z1","expires_in":"1h"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 300 {
		t.Fatalf("the cut-off replica accepted a mutation: %d", resp.StatusCode)
	}
}
