package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/actuator/arc"
	"github.com/grayzone/grayzone/actuator/autoscaling"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/store"
)

// ARCReconcileEvery is how often serve reads ARC's zonal shifts back, to see
// shifts started elsewhere and grayzone's shifts that ARC ended.
const ARCReconcileEvery = 10 * time.Second

// arcCallTimeout bounds one reconciliation (the SDK retries inside it).
const arcCallTimeout = 20 * time.Second

// awsConfig is the AWS SDK configuration, loaded once, from the SDK's
// default chain only: credentials from the environment, shared config and
// profiles, web identity or the instance role; region from AWS_REGION or
// the profile; endpoints from AWS_ENDPOINT_URL(_<SERVICE>). grayzone's own
// configuration holds none of it.
func (s *Service) awsConfig(ctx context.Context) (aws.Config, error) {
	s.awsOnce.Do(func() {
		if s.awsCfg != nil {
			return
		}
		cfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err == nil && cfg.Region == "" {
			err = errors.New("no AWS region: set AWS_REGION or a profile's region")
		}
		s.awsCfg, s.awsErr = &cfg, err
	})
	if s.awsErr != nil {
		return aws.Config{}, fmt.Errorf("serve: AWS SDK configuration: %w", s.awsErr)
	}
	return *s.awsCfg, nil
}

// awsState is the Service's AWS configuration, loaded on first use.
type awsState struct {
	awsOnce sync.Once
	awsCfg  *aws.Config
	awsErr  error
}

// awsPlanes builds the resource's AWS actuators: the ARC mirror for a front
// door of type arc, the Auto Scaling actuator for a control plane of type
// autoscaling (returned as the control plane, or nil).
func (s *Service) awsPlanes(ctx context.Context, r *resource) (actuator.Actuator, error) {
	rc := r.cfg
	if rc.FrontDoor.Type != config.FrontDoorARC && rc.ControlPlane.Type != config.ControlPlaneAutoScaling {
		return nil, nil
	}
	cfg, err := s.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	if rc.FrontDoor.Type == config.FrontDoorARC {
		r.mirror = &arc.Mirror{Client: arc.New(cfg, rc.FrontDoor.ResourceIdentifier), Resource: rc.Name, Book: s.shifts,
			Report: func(e arc.Event) {
				s.audit(context.Background(), store.AuditEntry{Kind: e.Kind, Resource: rc.Name, Zone: e.Zone, Actor: "arc", Message: e.Msg,
					Detail: jsonDetail(map[string]string{"shift_id": e.ShiftID, "resource_identifier": rc.FrontDoor.ResourceIdentifier})})
			}}
	}
	if rc.ControlPlane.Type != config.ControlPlaneAutoScaling {
		return nil, nil
	}
	a, err := autoscaling.New(cfg, autoscaling.Options{Groups: rc.ControlPlane.Groups, MinCapacity: rc.MinCapacity, Store: s.db,
		Report: func(e autoscaling.Event) {
			s.audit(context.Background(), store.AuditEntry{Kind: "autoscaling_" + e.Kind, Resource: rc.Name, Zone: e.Zone, Actor: "autoscaling", Message: e.Msg,
				Detail: jsonDetail(map[string]string{"group": e.Group})})
		}})
	if err != nil {
		return nil, fmt.Errorf("serve: resource %s: %w", rc.Name, err)
	}
	return a, nil
}

// syncARC reconciles the resource with ARC now (a no-op without ARC).
func (r *resource) syncARC(ctx context.Context) error {
	if r.mirror == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, arcCallTimeout)
	defer cancel()
	err := r.mirror.Reconcile(ctx, r.s.clock.Now())
	r.reconcile(ctx, r.s.clock.Now())
	return err
}

// pushed applies grayzone shift id to ARC now and says whether it holds:
// nil once ARC carries it (or without ARC); the refusal, as a shift error
// the API maps to 4xx, when ARC refused it; the failure while ARC cannot be
// reached (the shift stays and the mirror keeps trying).
func (r *resource) pushed(ctx context.Context, id string) error {
	if r.mirror == nil {
		return nil
	}
	err := r.syncARC(ctx)
	sh, gerr := r.s.shifts.Get(id)
	if gerr != nil {
		return gerr
	}
	switch {
	case sh.Status == shift.Active && sh.ARCZonalShiftID != "":
		return nil
	case sh.Status != shift.Active && strings.HasPrefix(sh.EndedBy, "arc: "):
		var ae *arc.Error
		if errors.As(err, &ae) && ae.Code == "ValidationException" {
			return fmt.Errorf("%s: %w", strings.TrimPrefix(sh.EndedBy, "arc: "), shift.ErrInvalid)
		}
		return fmt.Errorf("%s: %w", strings.TrimPrefix(sh.EndedBy, "arc: "), shift.ErrConflict)
	case sh.Status != shift.Active:
		return nil
	case err != nil:
		return fmt.Errorf("shift %s is recorded but not yet in ARC (grayzone keeps trying): %w", id, err)
	}
	return fmt.Errorf("shift %s is recorded but not yet in ARC (grayzone keeps trying)", id)
}

// pushedAuto is pushed for the runbook's automatic shift: a refusal by ARC
// is remembered, so that the next tick ends the episode (one audit line)
// instead of the runbook retrying a call that cannot succeed.
func (r *resource) pushedAuto(ctx context.Context, id string) error {
	err := r.pushed(ctx, id)
	if errors.Is(err, shift.ErrConflict) || errors.Is(err, shift.ErrInvalid) {
		r.mu.Lock()
		r.refused = err.Error()
		r.mu.Unlock()
	}
	return err
}

// abandonRefused ends a runbook episode whose shift ARC refused. The zone's
// alarm must clear and rise again before grayzone tries again.
func (r *resource) abandonRefused(now time.Time) {
	r.mu.Lock()
	why := r.refused
	r.refused = ""
	r.mu.Unlock()
	if ph, _ := r.ctrl.Phase(); why != "" && ph == runbook.Shifting {
		r.drv.Abandon(now, "ARC refused the shift: "+why)
	}
}

// runMirror reconciles with ARC every ARCReconcileEvery until ctx ends, in
// its own goroutine: a slow or unreachable ARC never holds up detection.
func (r *resource) runMirror(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		// A replica mirrors only while it leads, under the leadership's
		// context: a follower never calls ARC, and a deposed leader's
		// in-flight call is cancelled.
		r.runWhileLeading(ctx, r.mirrorLoop)
	}()
}

// mirrorLoop reconciles with ARC every ARCReconcileEvery until ctx ends;
// a replica's term starts with one at once (Open synced a lone service).
func (r *resource) mirrorLoop(ctx context.Context) {
	tick, stop := r.s.clock.NewTicker(ARCReconcileEvery)
	defer stop()
	due := r.leaderTerm() != nil
	for {
		if due && r.leads() { // leads: false under leader_election kubernetes-lease while following
			if err := r.syncARC(ctx); err != nil && ctx.Err() == nil {
				r.s.log.Warn("ARC reconciliation", "resource", r.cfg.Name, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
			due = true
		}
	}
}
