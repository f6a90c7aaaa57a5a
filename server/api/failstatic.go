package api

import (
	"time"

	"github.com/grayzone/grayzone/engine/detect"
)

// FailStatic says that a resource's detector doubts its own view and keeps
// what is in force (GET /v1/status: resources[].fail_static, absent when
// not in doubt).
type FailStatic struct {
	// Reason is telemetry_lost or canaries_failing.
	Reason string    `json:"reason"`
	Why    string    `json:"why"`
	Since  time.Time `json:"since"`
}

// FailStaticOf is the wire form of the engine's doubt, nil when there is none.
func FailStaticOf(fs detect.FailStatic) *FailStatic {
	if !fs.Active {
		return nil
	}
	return &FailStatic{Reason: fs.Reason, Why: fs.Why, Since: fs.Since.UTC()}
}
