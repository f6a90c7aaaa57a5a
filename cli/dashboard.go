package cli

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/grayzone/grayzone/report"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/dashboard"
)

// serveDashboard returns the dashboard mounted beside serve's API. Its event
// stream follows the API's rule for reads: open, or a token like any GET.
func serveDashboard(cfg *config.Config, tokens []config.Token, log *slog.Logger) func(api.Backend) map[string]http.Handler {
	return func(b api.Backend) map[string]http.Handler {
		return dashboard.Handlers(b, dashboard.Options{
			OpenReads: cfg.Auth.OpenReads,
			Tokens:    func() []config.Token { return tokens },
			Log:       log,
		})
	}
}

// labDashboard returns the dashboard of a real-mode lab run: reads are open
// and nothing can be changed, since the runbook owns the lab's shifts.
func labDashboard(log *slog.Logger) func(api.Backend) map[string]http.Handler {
	return func(b api.Backend) map[string]http.Handler {
		return dashboard.Handlers(b, dashboard.Options{
			OpenReads: true,
			ReadOnly:  "this is a lab run: grayzone's runbook makes its shifts. Run grayzone serve to shift zones by hand.",
			Log:       log,
		})
	}
}

// writeHTMLReport writes a run report's page through a temporary file, so an
// interrupted write never leaves half a page under the name asked for. sc is
// nil for a replay.
func writeHTMLReport(path string, r *report.Report, sc *report.Scene) error {
	var buf bytes.Buffer
	if err := dashboard.WriteReport(&buf, r, sc); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	return nil
}
