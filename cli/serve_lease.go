package cli

import (
	"context"
	"log/slog"
	"os"

	"github.com/grayzone/grayzone/actuator/kubernetes"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/lease/kubelease"
)

// startLeaderElection runs the configured election. It returns the
// service's Leading function (nil: no election, this replica always acts),
// its LeaseEpoch function, and a channel that receives an error when this replica loses a lease it
// held; serve then stops, so that it never acts without the lease.
func startLeaderElection(ctx context.Context, cfg *config.Config, log *slog.Logger) (leading func() bool, epoch func() uint64, lost <-chan error, err error) {
	le := cfg.LeaderElection
	if le.Type != config.LeaderElectionKubernetes {
		return nil, nil, nil, nil
	}
	client, err := kubernetes.NewClient()
	if err != nil {
		return nil, nil, nil, err
	}
	ns := le.Namespace
	if ns == "" {
		ns = os.Getenv("POD_NAMESPACE") // the chart sets it from the downward API
	}
	if ns == "" {
		ns = "default"
	}
	id := os.Getenv("POD_NAME")
	if id == "" {
		id, _ = os.Hostname()
	}
	e, err := kubelease.New(kubelease.Options{Client: client, Namespace: ns, Name: le.Name, Identity: id,
		LeaseDuration: le.LeaseDuration, RenewDeadline: le.RenewDeadline, RetryPeriod: le.RetryPeriod, Log: log})
	if err != nil {
		return nil, nil, nil, err
	}
	lostc := make(chan error, 1)
	go func() {
		if err := e.Run(ctx); err != nil {
			lostc <- err
		}
	}()
	return e.Leading, e.Epoch, lostc, nil
}
