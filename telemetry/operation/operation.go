// Package operation is the catalogue of the workshop workload's operations:
// what each is called, whether it touches the database, and the latency above
// which a request counts as slow.
package operation

import "time"

// DefaultThreshold is the slow threshold of an operation no configuration
// names: the one default the front door's recorder, the ingest gate and the
// engine share.
const DefaultThreshold = 100 * time.Millisecond

// Thresholds is the catalogue's slow threshold per operation name.
func Thresholds() map[string]time.Duration {
	th := make(map[string]time.Duration, len(Catalog))
	for _, op := range Catalog {
		th[op.Name] = op.Threshold
	}
	return th
}

// Operation is one endpoint of the workload.
type Operation struct {
	Name       string
	UsesDB     bool
	Threshold  time.Duration // a request slower than this is "high latency"
	DefaultMix float64       // share of customer traffic when a scenario names none
}

// Catalog lists the workshop's operations in a fixed order; the order is part
// of every deterministic iteration (sim mode, reports).
var Catalog = []Operation{
	{Name: "ride", UsesDB: true, Threshold: DefaultThreshold, DefaultMix: 0.4},
	{Name: "pay", UsesDB: true, Threshold: DefaultThreshold, DefaultMix: 0.2},
	{Name: "signin", UsesDB: false, Threshold: DefaultThreshold, DefaultMix: 0.2},
	{Name: "home", UsesDB: false, Threshold: DefaultThreshold, DefaultMix: 0.2},
}

// Lookup returns the operation called name.
func Lookup(name string) (Operation, bool) {
	for _, op := range Catalog {
		if op.Name == name {
			return op, true
		}
	}
	return Operation{}, false
}

// Names lists the catalogue's operation names in order.
func Names() []string {
	out := make([]string, len(Catalog))
	for i, op := range Catalog {
		out[i] = op.Name
	}
	return out
}
