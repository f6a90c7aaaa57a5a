package cli

import "net/http"

// dashboardHandlers are mounted beside the API by serve (none yet).
func dashboardHandlers() map[string]http.Handler { return nil }
