package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/lab/awsstandin"
	"github.com/grayzone/grayzone/server/config"
)

const testALB = "arn:aws:elasticloadbalancing:us-east-2:123456789012:loadbalancer/app/web/0123456789abcdef"

// awsService is serve with ARC as the front door and an Auto Scaling group
// as the control plane, against the AWS stand-in, on one fake clock.
func awsService(t *testing.T, extra string) (*Service, *awsstandin.Server, *clock.Fake) {
	t.Helper()
	y := fmt.Sprintf(`auth: {tokens: [test-token-0123456789abcdef]}
resources:
  - name: web
    zones: [z1, z2, z3]
    frontdoor: {type: arc, resource_identifier: %s}
    autoshift: {control_plane_after: 5s, recovery_hold: 10s}
    control_plane: {type: autoscaling, groups: [web-asg]}
%s`, testALB, extra)
	cfg, err := config.Parse("aws.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	return openAWS(t, cfg)
}

func openAWS(t *testing.T, cfg *config.Config) (*Service, *awsstandin.Server, *clock.Fake) {
	t.Helper()
	fc := clock.NewFake(time.Now().UTC().Truncate(time.Second)) // the SDK signs with the wall clock
	srv := awsstandin.New(awsstandin.Options{Clock: fc})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	srv.AddManagedResource(testALB, "z1", "z2", "z3")
	var subnets []string
	for i, z := range []string{"z1", "z2", "z3"} {
		id := "subnet-" + z
		srv.AddSubnet(awsstandin.Subnet{ID: id, VPC: "vpc-1", AZ: "us-east-2" + string(rune('a'+i)), AZID: z})
		subnets = append(subnets, id)
	}
	srv.AddGroup(awsstandin.GroupSpec{Name: "web-asg", MinSize: 3, MaxSize: 12, Desired: 6, Subnets: subnets})
	aws := srv.Config()
	s, err := Open(context.Background(), Options{Config: cfg, Tokens: cfg.Auth.Tokens, Log: slog.New(slog.DiscardHandler), Clock: fc, AWS: &aws})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, srv, fc
}

func TestARCAndAutoScalingRunTheRunbook(t *testing.T) {
	s, srv, fc := awsService(t, "")
	run(t, s, fc, 5, "z2")
	sh, ok := active(s)
	if !ok || sh.AwayFrom != "z2" || sh.ARCZonalShiftID == "" || srv.ShiftedAway(testALB) != "z2" {
		t.Fatalf("after z2 failed: %+v %v; ARC away from %q\n%s", sh, ok, srv.ShiftedAway(testALB), auditKinds(t, s))
	}
	run(t, s, fc, 10, "z2") // past control_plane_after
	g, _ := srv.Group("web-asg")
	if slices.Contains(g.Subnets, "subnet-z2") || g.PerZone["z2"] != 0 || g.PerZone["z1"]+g.PerZone["z3"] != 6 {
		t.Fatalf("group after exclusion: %+v\n%s", g, auditKinds(t, s))
	}
	run(t, s, fc, 30, "") // recovery: capacity back, then traffic
	if _, ok := active(s); ok || srv.ShiftedAway(testALB) != "" {
		t.Fatalf("still shifted after recovery (ARC: %q)\n%s", srv.ShiftedAway(testALB), auditKinds(t, s))
	}
	g, _ = srv.Group("web-asg")
	if len(g.Subnets) != 3 || g.PerZone["z2"] != 2 {
		t.Fatalf("group after recovery: %+v", g)
	}
	a := auditKinds(t, s)
	for _, want := range []string{"shift_applied: shift " + sh.ID + " is ARC zonal shift " + sh.ARCZonalShiftID,
		"autoscaling_excluded: group web-asg: subnets subnet-z2 of z2 removed", "autoscaling_included: group web-asg: subnets subnet-z2 of z2 restored",
		"shift_applied: ARC zonal shift " + sh.ARCZonalShiftID + " (grayzone shift " + sh.ID + ") cancelled"} {
		if !strings.Contains(a, want) {
			t.Errorf("audit lacks %q:\n%s", want, a)
		}
	}
}

// A shift someone else started in ARC is seen, blocks autoshift like any
// active shift, and cannot be cancelled through grayzone.
func TestForeignARCShiftIsRespected(t *testing.T) {
	s, srv, fc := awsService(t, "")
	ctx := context.Background()
	srv.StartOutside(testALB, "z3", awsstandin.ZonalShiftType, "console: maintenance", 2*time.Hour)
	if err := s.byName["web"].syncARC(ctx); err != nil {
		t.Fatal(err)
	}
	list, _ := s.Shifts(ctx, shift.ListFilter{Status: shift.Active})
	if len(list) != 1 || list[0].Origin != shift.External || list[0].StartedBy != "arc:ZONAL_SHIFT" {
		t.Fatalf("shift list: %+v", list)
	}
	if _, err := s.CancelShift(ctx, list[0].ID, "alice"); !errors.Is(err, shift.ErrConflict) {
		t.Fatalf("cancel of a foreign shift: %v", err)
	}
	run(t, s, fc, 5, "z2")
	if sh, _ := active(s); sh.Origin != shift.External || srv.ShiftedAway(testALB) != "z3" {
		t.Fatalf("active %+v, ARC away from %q", sh, srv.ShiftedAway(testALB))
	}
	if a := auditKinds(t, s); !strings.Contains(a, "vetoed: shift of z2 not started: shift arc-") {
		t.Fatalf("no veto:\n%s", a)
	}
}

// ARC refusing a shift is one line on the API and in the audit log; the
// shift is ended with the reason.
func TestManualShiftRefusedByARC(t *testing.T) {
	s, srv, _ := awsService(t, "")
	srv.Deny(awsstandin.ARC, "StartZonalShift")
	_, err := s.StartShift(context.Background(), shift.StartRequest{Resource: "web", AwayFrom: "z1", ExpiresIn: time.Hour, Comment: "test", StartedBy: "alice"})
	if !errors.Is(err, shift.ErrConflict) || !strings.Contains(err.Error(), "AccessDeniedException") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v", err)
	}
	list, _ := s.Shifts(context.Background(), shift.ListFilter{})
	if len(list) != 1 || list[0].Status != shift.Canceled || !strings.Contains(list[0].EndedBy, "AccessDeniedException") {
		t.Fatalf("shifts %+v", list)
	}
	if a := auditKinds(t, s); strings.Count(a, "shift_refused:") != 1 {
		t.Fatalf("audit:\n%s", a)
	}
}

// ARC refusing the automatic shift ends the episode in one line: no retry
// loop of refused calls while the alarm stays up.
func TestAutomaticShiftRefusedByARCIsNotRetried(t *testing.T) {
	s, srv, fc := awsService(t, "")
	srv.Deny(awsstandin.ARC, "StartZonalShift")
	run(t, s, fc, 60, "z2")
	starts := 0
	for _, c := range srv.Calls() {
		if c.Action == "StartZonalShift" {
			starts++
		}
	}
	a := auditKinds(t, s)
	if starts != 1 || strings.Count(a, "shift_refused:") != 1 || !strings.Contains(a, "runbook episode abandoned: ARC refused the shift") {
		t.Fatalf("%d StartZonalShift calls\n%s", starts, a)
	}
	if ph, _ := s.byName["web"].ctrl.Phase(); ph != "idle" {
		t.Fatalf("phase %s", ph)
	}
}

// Without a region the AWS SDK cannot call anything: serve says so at start.
func TestAWSNeedsARegion(t *testing.T) {
	for k, v := range map[string]string{"AWS_REGION": "", "AWS_DEFAULT_REGION": "", "AWS_PROFILE": "", "AWS_CONFIG_FILE": "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"} {
		t.Setenv(k, v)
	}
	cfg, err := config.Parse("aws.yaml", []byte(fmt.Sprintf(`auth: {tokens: [test-token-0123456789abcdef]}
resources:
  - name: web
    zones: [z1, z2, z3]
    frontdoor: {type: arc, resource_identifier: %s}
`, testALB)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	_, err = Open(context.Background(), Options{Config: cfg, Log: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "no AWS region: set AWS_REGION or a profile's region") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v", err)
	}
}
