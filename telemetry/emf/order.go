package emf

import (
	"cmp"
	"slices"

	"github.com/grayzone/grayzone/telemetry/record"
)

// sortAggregates orders by time, then series, so output is deterministic.
func sortAggregates(as []record.Aggregate) {
	slices.SortFunc(as, func(x, y record.Aggregate) int {
		if c := x.At.Compare(y.At); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(x.Key.Zone, y.Key.Zone), cmp.Compare(x.Key.Instance, y.Key.Instance), cmp.Compare(x.Key.Operation, y.Key.Operation))
	})
}
