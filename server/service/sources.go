package service

import (
	"context"
	"fmt"

	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/telemetry/ingest"
)

// newSource builds one configured telemetry source; the returned function
// runs it until ctx ends.
func newSource(sc config.Source, gate *ingest.Gate, s *Service) (func(context.Context) error, error) {
	switch sc.Type {
	}
	return nil, fmt.Errorf("type %q is not supported by this build", sc.Type)
}
