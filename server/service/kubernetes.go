package service

import (
	"context"
	"fmt"
	"sync"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/actuator/kubernetes"
	"github.com/grayzone/grayzone/server/store"
)

// kubeState is the Service's Kubernetes client, made on first use and
// shared by every resource's front door and control plane.
type kubeState struct {
	kubeOnce   sync.Once
	kubeClient kubernetes.Client
	kubeErr    error
}

func (s *Service) kube() (kubernetes.Client, error) {
	s.kubeOnce.Do(func() { s.kubeClient, s.kubeErr = kubernetes.NewClient() })
	return s.kubeClient, s.kubeErr
}

// acts reports whether this replica decides and acts now: it holds the
// Lease (leader_election kubernetes-lease) and, with a shared store, leads
// there too (its writes are not fenced off). Safe from any goroutine.
func (s *Service) acts() bool {
	if s.kubeLeading != nil && !s.kubeLeading() {
		return false
	}
	return s.db.Fence() != store.NoEpoch
}

// kubernetesControl builds control_plane type kubernetes; its informers
// start with the resource.
func (r *resource) kubernetesControl() (actuator.Actuator, error) {
	client, err := r.s.kube()
	if err != nil {
		return nil, fmt.Errorf("serve: resource %s: %w", r.cfg.Name, err)
	}
	kc := r.cfg.ControlPlane.Kubernetes
	var ws []kubernetes.Workload
	for _, w := range kc.Workloads {
		ws = append(ws, kubernetes.Workload{Namespace: w.Namespace, Name: w.Name})
	}
	c := kubernetes.NewControl(kubernetes.ControlOptions{Client: client, ZoneLabel: kc.ZoneLabel, Workloads: ws, Log: r.s.log.With("resource", r.cfg.Name)})
	r.starters = append(r.starters, c.Start)
	return c, nil
}

// kubernetesSlices builds front door type kubernetes-endpointslices: an
// external data plane (reconcile sets the shifted zone each tick, its loop
// writes the slices). Only the replica that acts writes them.
func (r *resource) kubernetesSlices() (externalPlane, error) {
	client, err := r.s.kube()
	if err != nil {
		return nil, fmt.Errorf("serve: resource %s: %w", r.cfg.Name, err)
	}
	ks := r.cfg.FrontDoor.KubernetesSlices
	return kubernetes.NewSlices(kubernetes.SlicesOptions{Client: client, Namespace: ks.Namespace, Source: ks.Service, Service: ks.MirrorService,
		Leading: r.acts, Log: r.s.log.With("resource", r.cfg.Name)}), nil
}

// syncingPlane is an external data plane that can say when a shift has
// reached the systems it drives (the EndpointSlices front door).
type syncingPlane interface {
	Sync(ctx context.Context) error
}

// planeSynced returns once the external data plane carries the active
// shift, so that the runbook's data-plane step is done only when traffic
// has moved (and its control-plane step comes after that, never before).
func (r *resource) planeSynced(ctx context.Context) error {
	sp, ok := r.plane.(syncingPlane)
	if !ok {
		return nil
	}
	if err := sp.Sync(ctx); err != nil {
		return fmt.Errorf("serve: resource %s: data plane: %w", r.cfg.Name, err)
	}
	return nil
}
