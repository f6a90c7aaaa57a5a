package benchmark

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
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

// With the senders in a process of their own (bench ingest's default), the
// records that process sends are the records the gate admits, and its CPU
// is reported apart from the receiving side's.
func TestIngestSenderProcess(t *testing.T) {
	if os.Getenv("GRAYZONE_TEST_SENDER") == "1" {
		return // the child side runs in TestMain
	}
	t.Setenv("GRAYZONE_TEST_SENDER", "1")
	o := IngestOptions{Instances: 200, Operations: 10, Duration: time.Second, Sources: []string{"otlp", "batch"},
		Sender: []string{os.Args[0], "-test.run=^$", "--"}}
	res, err := RunIngest(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		admitted := int64(r.ObsPerS*r.Seconds + 0.5)
		if !r.SendersApart || r.Sent == 0 || r.SenderCPUS <= 0 || r.Dropped != 0 || admitted != r.Sent {
			t.Errorf("%s: sent %d, admitted %d, dropped %d, sender CPU %.2fs, apart %v", r.Source, r.Sent, admitted, r.Dropped, r.SenderCPUS, r.SendersApart)
		}
	}
}

// TestMain is also the sender process of TestIngestSenderProcess: the test
// binary, started with GRAYZONE_TEST_SENDER=1 and the sender's flags after
// "--", runs RunSender.
//
// It is also the floor proxy process of TestFloorProxyRelays: with
// GRAYZONE_TEST_FLOORPROXY set to the backends, it runs RunFloorProxy (which
// takes the process's one P for its loop).
func TestMain(m *testing.M) {
	flag.Parse()
	if b := os.Getenv("GRAYZONE_TEST_FLOORPROXY"); b != "" {
		if err := RunFloorProxy(context.Background(), "127.0.0.1:0", strings.Split(b, ","), os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv("GRAYZONE_TEST_SENDER") == "1" && flag.NArg() > 0 {
		fs := flag.NewFlagSet("sender", flag.ExitOnError)
		var o SenderOptions
		fs.StringVar(&o.URL, "url", "", "")
		fs.StringVar(&o.Source, "source", "", "")
		fs.DurationVar(&o.Duration, "duration", 0, "")
		fs.IntVar(&o.Instances, "instances", 0, "")
		fs.IntVar(&o.Operations, "operations", 0, "")
		_ = fs.Parse(flag.Args())
		if err := RunSender(context.Background(), o, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
