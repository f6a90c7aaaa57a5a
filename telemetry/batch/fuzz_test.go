package batch

import (
	"reflect"
	"testing"
	"time"
)

// FuzzAggregateBatch decodes arbitrary bodies of POST /v1/observations
// the way the handler does: errors, never panics, and what it accepts is
// consistent. The fast path for plain aggregated batches must answer
// exactly as the strict encoding/json path does (the same records, or the
// same error) whenever it answers at all.
func FuzzAggregateBatch(f *testing.F) {
	f.Add([]byte(`{"resource":"web","aggregates":[{"source":"server","zone":"a","instance":"i","operation":"o","requests":3,"faults":1,"latency_ms":[[5,2],[200,1]]}]}`))
	f.Add([]byte(`{"resource":"web","observations":[{"source":"canary","zone":"a","operation":"o","status":503,"latency_ms":1}],"aggregates":[{"source":"server","zone":"a","operation":"o","requests":1,"slow":1}]}`))
	f.Add([]byte(`{"resource":"web","aggregates":[{"requests":1e30}]}`))
	f.Add([]byte(`{"aggregates":[{"at":"2026-01-01T00:00:00Z","source":"canary","zone":"b","operation":"get","requests":20,"slow":0,"latency_ms":[[4.25,13],[0.5,6],[80,1]]}], "resource":"web"}`))
	f.Add([]byte(` { "resource" : "web" , "aggregates" : [ { "source" : "server" , "zone" : "a" , "operation" : "o" , "requests" : 2 , "errors" : 3 , "latency_ms" : [ ] } ] } `))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		res, obs, aggs, err := Decode(body, now)
		sres, sobs, saggs, serr := decodeStrict(body, now)
		if (err == nil) != (serr == nil) || (err != nil && err.Error() != serr.Error()) ||
			res != sres || !reflect.DeepEqual(obs, sobs) || !reflect.DeepEqual(aggs, saggs) {
			t.Fatalf("the fast and strict paths disagree:\nfast:   %q %v %+v %v\nstrict: %q %v %+v %v", res, obs, aggs, err, sres, sobs, saggs, serr)
		}
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
