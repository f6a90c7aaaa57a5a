package service

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/store"
)

// The service's loop, driven tick by tick on a fake clock: no listeners,
// exact times.

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func guardService(t *testing.T, autoshift string) (*Service, *clock.Fake) {
	t.Helper()
	y := fmt.Sprintf(`auth: {tokens: [test-token-0123456789abcdef]}
resources:
  - name: web
    zones: [z1, z2, z3]
    frontdoor:
      type: embedded
      regional: 127.0.0.1:0
      zonal: {z1: 127.0.0.1:0, z2: 127.0.0.1:0, z3: 127.0.0.1:0}
      targets:
        - {id: z1-1, zone: z1, addr: 127.0.0.1:1}
        - {id: z1-2, zone: z1, addr: 127.0.0.1:2}
        - {id: z2-1, zone: z2, addr: 127.0.0.1:3}
        - {id: z2-2, zone: z2, addr: 127.0.0.1:4}
        - {id: z3-1, zone: z3, addr: 127.0.0.1:5}
        - {id: z3-2, zone: z3, addr: 127.0.0.1:6}
    autoshift: {%s}
`, autoshift)
	cfg, err := config.Parse("guard.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	fc := clock.NewFake(t0)
	s, err := Open(context.Background(), Options{Config: cfg, Tokens: cfg.Auth.Tokens, Log: slog.New(slog.DiscardHandler), Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, fc
}

// run feeds a second of traffic per tick for secs seconds: failing zone's
// instances fault half their requests (none when failing is "").
func run(t *testing.T, s *Service, fc *clock.Fake, secs int, failing string) {
	t.Helper()
	feed(t, s, fc, secs, failing, true)
}

func auditKinds(t *testing.T, s *Service) string {
	t.Helper()
	es, err := s.Audit(context.Background(), store.AuditQuery{Resource: "web"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%s: %s\n", e.Kind, e.Message)
	}
	return b.String()
}

func active(s *Service) (shift.Shift, bool) { return s.shifts.Active("web") }

func TestAutoshiftShiftsAndRecovers(t *testing.T) {
	s, fc := guardService(t, "recovery_hold: 10s")
	run(t, s, fc, 10, "")
	if _, ok := active(s); ok {
		t.Fatal("shifted with no impact")
	}
	run(t, s, fc, 5, "z2")
	sh, ok := active(s)
	if !ok || sh.AwayFrom != "z2" || sh.Origin != shift.Auto {
		t.Fatalf("after z2 failed: %+v %v\n%s", sh, ok, auditKinds(t, s))
	}
	if !s.byName["web"].table.Shifted("z2") {
		t.Error("front door not shifted")
	}
	// Healthy again: the shift ends after the recovery hold plus the health window.
	run(t, s, fc, 25, "")
	if _, ok := active(s); ok {
		t.Fatalf("shift still active after recovery\n%s", auditKinds(t, s))
	}
	got, _ := s.shifts.Get(sh.ID)
	if got.Status != shift.Canceled || !strings.Contains(got.EndedBy, "recovered") {
		t.Errorf("ended shift = %+v", got)
	}
}

func TestDryRunDecidesButDoesNotAct(t *testing.T) {
	s, fc := guardService(t, "dry_run: true")
	run(t, s, fc, 10, "z2")
	if sh, ok := active(s); ok {
		t.Fatalf("dry run shifted: %+v", sh)
	}
	a := auditKinds(t, s)
	if !strings.Contains(a, "decision: isolated impact: z2") || !strings.Contains(a, "vetoed: shift of z2 not started: dry run") {
		t.Errorf("audit lacks the decision and the dry-run veto:\n%s", a)
	}
	if strings.Count(a, "vetoed:") != 1 {
		t.Errorf("the veto is recorded once per rise, got:\n%s", a)
	}
}

func TestApprovalWaitsForAnOperator(t *testing.T) {
	s, fc := guardService(t, "approval: true")
	ctx := context.Background()
	run(t, s, fc, 5, "z2")
	if _, ok := active(s); ok {
		t.Fatal("shifted before approval")
	}
	ds, _ := s.Decisions(ctx)
	if len(ds) != 1 || ds[0].Zone != "z2" || ds[0].Status != "pending" {
		t.Fatalf("decisions = %+v", ds)
	}
	if _, err := s.Approve(ctx, ds[0].ID, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Approve(ctx, ds[0].ID, "bob"); err == nil {
		t.Error("approved twice")
	}
	run(t, s, fc, 2, "z2")
	if sh, ok := active(s); !ok || sh.AwayFrom != "z2" {
		t.Fatalf("not shifted after approval\n%s", auditKinds(t, s))
	}
}

func TestMinIntervalBetweenAutomaticShifts(t *testing.T) {
	s, fc := guardService(t, "min_interval: 10m, recovery_hold: 5s")
	ctx := context.Background()
	run(t, s, fc, 5, "z2")
	sh, ok := active(s)
	if !ok {
		t.Fatal("no first shift")
	}
	// An operator ends it; z3 fails three minutes later (after z2's impact has
	// left the detector's regional memory): too soon for another automatic shift.
	if _, err := s.CancelShift(ctx, sh.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	run(t, s, fc, 180, "")
	run(t, s, fc, 5, "z3")
	if sh, ok := active(s); ok {
		t.Fatalf("second automatic shift within min_interval: %+v", sh)
	}
	if a := auditKinds(t, s); !strings.Contains(a, "min_interval is 10m") {
		t.Errorf("audit lacks the min_interval veto:\n%s", a)
	}
}

func TestRestartResumesRunbook(t *testing.T) {
	s, fc := guardService(t, "recovery_hold: 10s")
	run(t, s, fc, 5, "z2")
	if _, ok := active(s); !ok {
		t.Fatal("no shift")
	}
	s.resources[0].persist(context.Background())
	cfg := s.cfg
	s.Close()
	// The process is gone; a new one opens the same data directory.
	s2, err := Open(context.Background(), Options{Config: cfg, Log: slog.New(slog.DiscardHandler), Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if ph, z := s2.resources[0].ctrl.Phase(); ph != "shifted" || z != "z2" {
		t.Fatalf("restored runbook %s %s", ph, z)
	}
	if !s2.byName["web"].table.Shifted("z2") {
		t.Error("restarted front door does not honour the shift")
	}
	run(t, s2, fc, 25, "")
	if _, ok := active(s2); ok {
		t.Fatalf("the resumed runbook did not end the shift\n%s", auditKinds(t, s2))
	}
}

// With a command control plane, serve runs the whole runbook: exclusion
// after control_plane_after, and on recovery capacity back, then traffic,
// then the extra capacity away. A failing control plane keeps the shift in
// force and is retried.
func TestCommandControlPlaneRunbookOrder(t *testing.T) {
	dir := t.TempDir()
	log := dir + "/cp.log"
	fails := dir + "/fails"
	// The first exclusion attempt fails, as a control plane impaired by the same event would.
	script := fmt.Sprintf(`if [ "$GRAYZONE_ACTION" = exclude_zone ] && [ ! -e %[1]q ]; then touch %[1]q; echo throttled; exit 1; fi; echo "$GRAYZONE_ACTION $GRAYZONE_ZONE" >> %[2]q`, fails, log)
	cmd := fmt.Sprintf("[sh, -c, %q]", script)
	s, fc := guardService(t, fmt.Sprintf("control_plane_after: 5s, recovery_hold: 10s}\n    control_plane: {type: command, exclude_zone: %s, include_zone: %s, remove_extra: %s", cmd, cmd, cmd))
	run(t, s, fc, 5, "z2")
	if _, ok := active(s); !ok {
		t.Fatal("no shift")
	}
	run(t, s, fc, 10, "z2") // past control_plane_after: exclusion fails once, then succeeds
	if _, ok := active(s); !ok {
		t.Fatal("the shift did not stay in force while the control plane failed")
	}
	st, _ := s.Status(context.Background())
	if ex := st.Resources[0].Excluded; len(ex) != 1 || ex[0] != "z2" {
		t.Fatalf("excluded = %v, want [z2]\n%s", ex, auditKinds(t, s))
	}
	run(t, s, fc, 30, "") // recovery
	if _, ok := active(s); ok {
		t.Fatalf("shift still active after recovery\n%s", auditKinds(t, s))
	}
	got, _ := os.ReadFile(log)
	if want := "exclude_zone z2\ninclude_zone z2\nremove_extra z2\n"; string(got) != want {
		t.Fatalf("control plane saw %q, want %q", got, want)
	}
	a := auditKinds(t, s)
	// Capacity back before traffic: include_zone's success is recorded before the shift ends.
	if i, j := strings.Index(a, "shift_ended"), strings.Index(a, "include_zone web/z2 done"); i < 0 || j < 0 || j < i {
		t.Errorf("audit (newest first) does not show include before the end of the shift:\n%s", a)
	}
	if !strings.Contains(a, "action_failed: exclude_zone web/z2 failed, will retry") {
		t.Errorf("the failed exclusion is not in the audit log:\n%s", a)
	}
}
