package api

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzAggregateBatch decodes arbitrary bodies of POST /v1/observations
// the way the handler does: errors, never panics, and what it accepts is
// consistent.
func FuzzAggregateBatch(f *testing.F) {
	f.Add([]byte(`{"resource":"web","aggregates":[{"source":"server","zone":"a","instance":"i","operation":"o","requests":3,"faults":1,"latency_ms":[[5,2],[200,1]]}]}`))
	f.Add([]byte(`{"resource":"web","observations":[{"source":"canary","zone":"a","operation":"o","status":503,"latency_ms":1}],"aggregates":[{"source":"server","zone":"a","operation":"o","requests":1,"slow":1}]}`))
	f.Add([]byte(`{"resource":"web","aggregates":[{"requests":1e30}]}`))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		var raw rawBatch
		if json.Unmarshal(body, &raw) != nil {
			return
		}
		if _, _, err := raw.convert(now); err != nil {
			return
		}
		aggs, err := convertAggregates(raw.Aggregates, now)
		if err != nil {
			return
		}
		for _, a := range aggs {
			var n uint64
			for _, b := range a.Latency {
				n += b.Count
			}
			if a.Requests == 0 || a.Faults+a.Errors > a.Requests || n > a.Requests || (a.Slow > a.Requests && a.Slow != ^uint64(0)) {
				t.Fatalf("accepted an inconsistent aggregate %+v", a)
			}
		}
	})
}
