package lab

import (
	"context"
	"errors"

	"github.com/grayzone/grayzone/report"
)

// runReal is real mode. TODO(lead): assembled once the workload, database and link packages land.
func runReal(ctx context.Context, o Options, mitigate bool) (report.Run, error) {
	return report.Run{}, errors.New("real mode: not yet")
}
