package cli

import (
	"log/slog"

	"github.com/grayzone/grayzone/internal/fdlimit"
)

// Descriptors serve holds, measured with `grayzone bench fleet` (see
// BENCHMARKS.md, "fleet"): per resource shaped like examples/serve.yaml's
// web at 1 req/s, four front-door listeners, kept-alive target connections
// and customer connections; canaries of serve's own front doors hold none
// (they are connected in memory). 11 to 12 were measured at 100 and 200
// resources; 24 leaves headroom for busier traffic (more target and
// customer connections at once); and for the process itself (API, store,
// logs, the dashboard's clients).
const (
	fdsPerResource = 24
	fdsBase        = 128
)

// checkFileLimit raises the open-file soft limit to the hard limit and
// warns when it still allows fewer resources than configured: running out
// makes every listener fail to accept ("too many open files").
func checkFileLimit(log *slog.Logger, resources int) {
	l, err := fdlimit.Raise()
	reportFileLimit(log, l, err, resources)
}

func reportFileLimit(log *slog.Logger, l fdlimit.Limit, err error, resources int) {
	if err != nil {
		log.Warn("open-file limit", "err", err)
		if l.Soft == 0 {
			return
		}
	}
	allows := fdlimit.Resources(l.Soft, fdsBase, fdsPerResource)
	if l.Raised {
		log.Info("raised the open-file limit to the hard limit", "from", l.Was, "to", l.Soft)
	}
	if uint64(resources) > allows {
		log.Warn("the open-file limit allows fewer resources than configured: raise it (ulimit -n, systemd LimitNOFILE=, docker --ulimit nofile=)",
			"limit", l.Soft, "hard", l.Hard, "allows_resources", allows, "resources", resources, "descriptors_per_resource", fdsPerResource)
		return
	}
	log.Debug("open-file limit", "limit", l.Soft, "allows_resources", allows, "resources", resources)
}
