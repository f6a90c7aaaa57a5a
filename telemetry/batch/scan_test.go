package batch

import "testing"

// The fast path reads the plain shape every shipper sends, and leaves the
// rest to the strict path (FuzzAggregateBatch checks that the two agree).
func TestBatchScannerTakesThePlainShapeOnly(t *testing.T) {
	for _, tc := range []struct {
		body string
		fast bool
	}{
		{`{"resource":"web","aggregates":[{"source":"server","zone":"a","instance":"i","operation":"o","requests":3,"faults":1,"latency_ms":[[5,2],[200,1]]}]}`, true},
		{` {"aggregates" : [ {"at":"2026-01-01T00:00:00.5Z","source":"canary","zone":"b","operation":"get","requests":20,"slow":0,"latency_ms":[[4.25,13],[0.5,6],[1e3,1]]} ] ,"resource":"web"}` + "\n", true},
		{`{"resource":"web","aggregates":[{"source":"server","zone":"a","operation":"o","requests":1,"slow":1}],"observations":[]}`, false}, // single observations: strict
		{`{"resource":"web","aggregates":[{"source":"server","zone":"a\u00e9","operation":"o","requests":1,"slow":1}]}`, false},             // an escape
		{`{"resource":"web","aggregates":[{"Source":"server","zone":"a","operation":"o","requests":1,"slow":1}]}`, false},                   // another case
		{`{"resource":"web","aggregates":[{"source":"server","zone":"a","zone":"b","operation":"o","requests":1,"slow":1}]}`, false},        // a duplicate key
		{`{"resource":"web","aggregates":[{"source":"server","zone":"a","operation":"o","requests":1,"slow":null}]}`, false},                // null
		{`{"resource":"web","aggregates":[{"source":"server","zone":"a","operation":"o","requests":1,"latency_ms":[[1,1,1]]}]}`, false},     // not a pair
		{`{"resource":"web","aggregates":[{"source":"server","zone":"a","operation":"o","requests":01,"slow":1}]}`, false},                  // not JSON
		{`{"resource":"web","aggregates":[{"source":"server","zone":"a","operation":"o","requests":1,"slow":1}]} {}`, false},                // trailing data
		{`{"resource":"web","aggregates":[]}`, false}, // no records
	} {
		s := getScanner()
		_, ok := s.scan([]byte(tc.body))
		s.put()
		if ok != tc.fast {
			t.Errorf("fast path %v, want %v: %s", ok, tc.fast, tc.body)
		}
	}
}
