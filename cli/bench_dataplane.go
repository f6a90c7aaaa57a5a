package cli

import (
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/grayzone/grayzone/benchmark"
)

func newBenchDataplaneCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		o      benchmark.DataplaneOptions
		output output
	)
	cmd := &cobra.Command{
		Use:   "dataplane",
		Short: "Time from a shift decision to the shifted zone's last new request, per data plane",
		Long: `For each data plane — the embedded front door in process ("embedded"), the same
front door as its own process fed over xDS ("embedded_process", grayzone
frontdoor), a real HAProxy driven through its runtime API ("haproxy"; and
"haproxy_epoch", its orders carrying a leader's epoch, as replicas' do, so
each shift reads HAProxy's epoch record first) and grpc-go's proxyless xDS
client ("xds_grpc") — runs customer requests
back to back over three zones of two backends, shifts one zone away and back
--shifts times, and reports, in milliseconds:

  shift:   from the decision to the last request sent after it that reached
           the shifted zone (0 when none did; requests already in flight at
           the decision are not counted);
  unshift: from the decision to end the shift to the first request that
           reached the zone again.

Median and p99 per data plane. HAProxy is skipped (with a message) when it is
not installed.

With --pin (the default on two or more CPUs), the bench itself (customers,
backends, the in-process planes) runs on CPU 0 and each data plane that is a
process of its own (HAProxy, one thread; grayzone frontdoor) on CPU 1, as a
deployment gives its proxy cores of its own. --pin=false lets everything
share every CPU: then, on a small machine, a proxy's event loop waits behind
the customers' loops, and that wait shows in its figures.`,
		Example: `  grayzone bench dataplane --output json
  grayzone bench dataplane --plane embedded,haproxy --shifts 100
  grayzone bench dataplane --plane haproxy --pin=false`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := output.check(); err != nil {
				return err
			}
			if o.Shifts < 1 {
				return usageErr("--shifts %d: want at least 1", o.Shifts)
			}
			o.Progress = stderr
			res, err := benchmark.RunDataplane(cmd.Context(), o)
			if err != nil {
				return &exitError{code: exitUnknown, err: err}
			}
			return output.write(stdout, res, func() {
				fmt.Fprintln(stdout, "| data plane | shifts | shift p50 ms | shift p99 ms | unshift p50 ms | unshift p99 ms | requests | failed |")
				fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|---|")
				for _, name := range benchmark.DataPlanes {
					if r, ok := res[name]; ok {
						fmt.Fprintf(stdout, "| %s | %d | %.3f | %.3f | %.3f | %.3f | %d | %d |\n", name, r.Shifts, r.ShiftP50ms, r.ShiftP99ms, r.UnshiftP50ms, r.UnshiftP99ms, r.Requests, r.Failed)
					}
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.Planes, "plane", nil, "data planes to measure (default all: embedded, embedded_process, haproxy, haproxy_epoch, xds_grpc)")
	f.IntVar(&o.Shifts, "shifts", 50, "shifts (and ends of shifts) measured per data plane")
	f.IntVar(&o.Concurrency, "concurrency", 4, "customer request loops")
	f.DurationVar(&o.Quiet, "quiet", 250*time.Millisecond, "a shift is complete once the zone got no new request for this long")
	f.BoolVar(&o.Pin, "pin", runtime.NumCPU() >= 2, "bench on CPU 0, each data plane process on CPU 1 (needs two CPUs)")
	output.flag(cmd, "text (a markdown table)")
	return cmd
}
