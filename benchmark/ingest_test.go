package benchmark

import (
	"context"
	"testing"
	"time"
)

// The overload case, small: senders offer far more than an engine limited to
// 500 records a tick takes. The excess must be dropped and counted, the
// buffer must stay within its bound, and the engine must keep ticking.
func TestIngestOverloadDropsCountsAndKeepsTicking(t *testing.T) {
	if testing.Short() {
		t.Skip("sends over loopback for seconds")
	}
	const drain, pending = 500, 20_000
	o := IngestOptions{Instances: 400, Operations: 50, Duration: 3 * time.Second, DrainPerTick: drain, MaxPending: pending}
	for _, src := range []string{"otlp", "batch"} {
		o.Sources = []string{src}
		res, err := RunIngest(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		r := res[0]
		ticks := r.Seconds / ingestTick.Seconds()
		switch {
		case r.Dropped == 0 || r.Overload < 2:
			t.Errorf("%s: not overloaded (dropped %d, offered %.1f× what the engine took): %+v", src, r.Dropped, r.Overload, r)
		case r.PendingMax > pending:
			t.Errorf("%s: %d pending, over the bound of %d", src, r.PendingMax, pending)
		case r.EnginePerS*r.Seconds > drain*(ticks+1):
			t.Errorf("%s: the engine took %.0f records in %.0f ticks, over its budget of %d a tick", src, r.EnginePerS*r.Seconds, ticks, drain)
		case r.EnginePerS*r.Seconds < drain*ticks/4:
			// Ticks ran (each takes its full budget from a full buffer):
			// a stalled tick would leave this far below.
			t.Errorf("%s: the engine took only %.0f records in %.1f s: ticks stalled", src, r.EnginePerS*r.Seconds, r.Seconds)
		case r.RSSMiB > 1024:
			t.Errorf("%s: peak RSS %.0f MiB", src, r.RSSMiB)
		}
	}
}
