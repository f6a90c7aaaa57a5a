package service

import (
	"fmt"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/actuator/kubernetes"
)

// kubernetesControl builds control_plane type kubernetes; its informers
// start with the resource.
func (r *resource) kubernetesControl() (actuator.Actuator, error) {
	client, err := kubernetes.NewClient()
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
