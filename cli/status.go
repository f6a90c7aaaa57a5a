package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/store"
)

// Where the API commands find grayzone serve and their credential. The token
// is read only from the environment: a flag would leak it into shell history
// and the process list.
const (
	envServer     = "GRAYZONE_SERVER"
	envToken      = "GRAYZONE_TOKEN"
	defaultServer = "http://127.0.0.1:8080"
)

// apiCommands are the commands that talk to a running grayzone serve.
func apiCommands(stdout, stderr io.Writer) []*cobra.Command {
	return []*cobra.Command{
		newShiftCmd(stdout, stderr),
		newStatusCmd(stdout),
		newAlarmsCmd(stdout),
		newAuditCmd(stdout),
		newDecisionsCmd(stdout),
		newApproveCmd(stdout),
	}
}

// remote holds what every API command shares: the --server flag and the
// --output format.
type remote struct {
	server string
	output string
}

// addServer adds --server as a persistent flag, so `grayzone shift --server
// URL list` and `grayzone shift list --server URL` both work.
func (r *remote) addServer(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&r.server, "server", "",
		"grayzone serve's URL (default $"+envServer+", else "+defaultServer+"); the token comes from $"+envToken)
}

func (r *remote) addOutput(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&r.output, "output", "o", "text", "text or json")
}

// client validates the flags and returns a client for the server.
func (r *remote) client() (*api.Client, error) {
	if r.output != "" && r.output != "text" && r.output != "json" {
		return nil, usageErr("--output %q: want text or json", r.output)
	}
	server := r.server
	if server == "" {
		server = os.Getenv(envServer)
	}
	if server == "" {
		server = defaultServer
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErr("server %q: want an http:// or https:// URL such as %s", server, defaultServer)
	}
	return api.NewClient(server, os.Getenv(envToken)), nil
}

// render prints v as indented JSON or with text.
func (r *remote) render(w io.Writer, v any, text func(io.Writer)) error {
	if r.output == "json" {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return &exitError{code: exitUnknown, err: fmt.Errorf("encode output: %w", err)}
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return &exitError{code: exitUnknown, err: fmt.Errorf("write output: %w", err)}
		}
		return nil
	}
	text(w)
	return nil
}

// serverError is an API error shown as the server's one-line message (plus
// a hint), still unwrapping to the *api.APIError.
type serverError struct {
	*api.APIError
	hint string
}

func (e serverError) Error() string { return e.Message + e.hint }
func (e serverError) Unwrap() error { return e.APIError }

// failed maps a client error to an exit status: the server refusing the
// request (4xx) is bad input, exit 2; the server failing or being
// unreachable is exit 1.
func failed(ctx context.Context, c *api.Client, err error) error {
	var ae *api.APIError
	if errors.As(err, &ae) {
		if ae.Status >= 400 && ae.Status < 500 {
			hint := ""
			if ae.Status == 401 && os.Getenv(envToken) == "" {
				hint = " (set " + envToken + ")"
			}
			return &exitError{code: ExitUsage, err: serverError{ae, hint}}
		}
		return &exitError{code: ExitFailed, err: serverError{ae, " (HTTP " + fmt.Sprint(ae.Status) + ")"}}
	}
	if ctx.Err() != nil {
		return &exitError{code: ExitFailed, err: errors.New("interrupted")}
	}
	return &exitError{code: ExitFailed, err: fmt.Errorf("%w; is grayzone serve running at %s? set --server or %s",
		err, c.BaseURL(), envServer)}
}

func newStatusCmd(stdout io.Writer) *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each resource's phase, active shift and zones",
		Long: `Asks grayzone serve for each resource: the runbook's phase, the active shift,
and per zone the server-side availability and p99 latency of the last 10 s, the
canaries' health, and what the detector thinks of it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return failed(cmd.Context(), c, err)
			}
			return r.render(stdout, st, func(w io.Writer) { printStatus(w, st) })
		},
	}
	r.addServer(cmd)
	r.addOutput(cmd)
	return cmd
}

func printStatus(w io.Writer, st api.Status) {
	printEngine(w, st.Engine)
	if len(st.Resources) == 0 {
		fmt.Fprintln(w, "no resources")
		return
	}
	for i, rs := range st.Resources {
		if i > 0 || st.Engine != nil {
			fmt.Fprintln(w)
		}
		phase := clean(rs.Phase)
		switch {
		case rs.PhaseZone != "" && (rs.Returning > 0 || rs.Phase == "ramping"):
			phase += fmt.Sprintf(" (%s, returning: %d %%)", clean(rs.PhaseZone), rs.Returning)
		case rs.PhaseZone != "":
			phase += " (" + clean(rs.PhaseZone) + ")"
		}
		fmt.Fprintf(w, "%s  phase %s  autoshift %s  detector %s\n", clean(rs.Name), phase, clean(rs.Autoshift), clean(rs.Detector))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		if s := rs.ActiveShift; s != nil {
			fmt.Fprintf(tw, "  active shift\t%s away from %s, %s, expires %s (%s)\n", clean(s.ID), clean(s.AwayFrom),
				s.Origin, s.ExpiresAt.UTC().Format(time.RFC3339), until(st.Now, s.ExpiresAt))
		} else {
			fmt.Fprintf(tw, "  active shift\tnone\n")
		}
		if rs.Why != "" {
			fmt.Fprintf(tw, "  why\t%s\n", clean(rs.Why))
		}
		if fs := rs.FailStatic; fs != nil {
			fmt.Fprintf(tw, "  fail static\t%s since %s: %s; no new shift starts and none ends on its own\n",
				clean(fs.Reason), fs.Since.UTC().Format(time.RFC3339), clean(fs.Why))
		}
		if rs.Regional {
			fmt.Fprintf(tw, "  regional impact\tyes: more than one zone is impaired, a zonal shift will not help\n")
		}
		if rs.Isolated != "" {
			fmt.Fprintf(tw, "  isolated zone\t%s\n", clean(rs.Isolated))
		}
		if len(rs.Excluded) > 0 {
			fmt.Fprintf(tw, "  excluded\t%s\n", clean(strings.Join(rs.Excluded, ", ")))
		}
		if len(rs.Pending) > 0 {
			fmt.Fprintf(tw, "  pending\t%s\n", clean(strings.Join(rs.Pending, ", ")))
		}
		tw.Flush()
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  ZONE\tAVAILABILITY\tP99\tREQUESTS\tHEALTH\tSTATE")
		for _, z := range rs.Zones {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\n", clean(z.Zone), percent(z.Availability, z.Requests),
				millis(z.P99Ms), z.Requests, health(z.Healthy), zoneState(z))
		}
		tw.Flush()
	}
	printDelivery(w, st.Notifications)
	if e := st.Engine; e != nil && e.Behind {
		// Again at the end, where a long fleet's listing leaves the eye.
		fmt.Fprintf(w, "\nWARNING: the engine falls behind: %s\n", clean(e.Why))
	}
}

// printEngine shows whether serve's tick loop keeps up: its passes' p99 and
// the last pass's lag, with a warning when it falls behind.
func printEngine(w io.Writer, e *api.EngineStatus) {
	if e == nil {
		return
	}
	if e.Passes == 0 {
		fmt.Fprintln(w, "engine: no tick yet")
		return
	}
	fmt.Fprintf(w, "engine: tick p99 %s, max %s (last %d passes, every %s), lag %s\n", millis(e.TickP99Ms), millis(e.TickMaxMs),
		e.Passes, millis(e.TickEveryMs), (time.Duration(e.LagS * float64(time.Second))).Round(time.Millisecond))
	if e.Behind {
		fmt.Fprintf(w, "WARNING: the engine falls behind: %s\n", clean(e.Why))
	}
}

// printDelivery shows each notification endpoint's outbox and counts.
func printDelivery(w io.Writer, ds []api.DeliveryStatus) {
	if len(ds) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NOTIFY	KIND	DELIVERED	WAITING	OLDEST	FAILED ATTEMPTS	GIVEN UP	LAST ERROR")
	for _, d := range ds {
		oldest := "-"
		if d.Pending > 0 {
			oldest = (time.Duration(d.LagSeconds) * time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\t%d\t%s\n", clean(d.Endpoint), clean(d.Kind), d.Delivered, d.Pending, oldest,
			d.Failures, d.GaveUp, clean(d.LastError))
	}
	tw.Flush()
}

func percent(a float64, requests int64) string {
	if requests == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", a*100)
}

func millis(ms float64) string {
	switch {
	case ms < 0:
		return "-" // no data
	case ms < 10:
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}

func health(ok bool) string {
	if ok {
		return "healthy"
	}
	return "unhealthy"
}

// zoneState lists what the detector and runbook say about a zone.
func zoneState(z api.ZoneStatus) string {
	var s []string
	for _, f := range []struct {
		on   bool
		name string
	}{{z.Impacted, "impacted"}, {z.Outlier, "outlier"}, {z.Isolated, "isolated"}, {z.Silent, "silent"}, {z.Shifted, "shifted"}} {
		if f.on {
			s = append(s, f.name)
		}
	}
	if len(s) == 0 {
		return "ok"
	}
	return strings.Join(s, ",")
}

// until says how far t is from now, on the server's clock.
func until(now, t time.Time) string {
	if now.IsZero() {
		return "?"
	}
	d := t.Sub(now).Round(time.Second)
	if d <= 0 {
		return "due"
	}
	return "in " + shortDuration(d)
}

func newAlarmsCmd(stdout io.Writer) *cobra.Command {
	var (
		r               remote
		resource, state string
	)
	cmd := &cobra.Command{
		Use:   "alarms",
		Short: "List alarms and their states",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			as, err := c.Alarms(cmd.Context(), resource)
			if err != nil {
				return failed(cmd.Context(), c, err)
			}
			// The API filters by resource only; the state filter is a
			// convenience of the command line.
			shown := []api.Alarm{}
			for _, a := range as {
				if state == "" || strings.EqualFold(a.State, state) {
					shown = append(shown, a)
				}
			}
			return r.render(stdout, shown, func(w io.Writer) {
				if len(shown) == 0 {
					fmt.Fprintln(w, "no alarms")
					return
				}
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "RESOURCE\tALARM\tSTATE\tREASON")
				for _, a := range shown {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", clean(a.Resource), clean(a.Name), clean(a.State), clean(a.Reason))
				}
				tw.Flush()
			})
		},
	}
	r.addServer(cmd)
	r.addOutput(cmd)
	cmd.Flags().StringVar(&resource, "resource", "", "only this resource's alarms")
	cmd.Flags().StringVar(&state, "state", "", "only alarms in this state (OK, ALARM, INSUFFICIENT_DATA)")
	return cmd
}

func newAuditCmd(stdout io.Writer) *cobra.Command {
	var (
		r        remote
		resource string
		limit    int
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log: decisions, shifts and actions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 || limit > store.MaxLimit {
				return usageErr("--limit %d: want 0..%d (0 means %d)", limit, store.MaxLimit, store.DefaultLimit)
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			es, err := c.Audit(cmd.Context(), store.AuditQuery{Resource: resource, Limit: limit})
			if err != nil {
				return failed(cmd.Context(), c, err)
			}
			if es == nil {
				es = []store.AuditEntry{}
			}
			return r.render(stdout, es, func(w io.Writer) {
				if len(es) == 0 {
					fmt.Fprintln(w, "no audit entries")
					return
				}
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tRESOURCE\tZONE\tACTOR\tMESSAGE")
				for _, e := range es {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.At.UTC().Format(time.RFC3339), clean(e.Kind),
						dash(e.Resource), dash(e.Zone), dash(e.Actor), clean(e.Message))
				}
				tw.Flush()
			})
		},
	}
	r.addServer(cmd)
	r.addOutput(cmd)
	cmd.Flags().StringVar(&resource, "resource", "", "only this resource's entries")
	cmd.Flags().IntVar(&limit, "limit", 0, fmt.Sprintf("at most this many entries (default %d, max %d)", store.DefaultLimit, store.MaxLimit))
	return cmd
}

func newDecisionsCmd(stdout io.Writer) *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:   "decisions",
		Short: "List autoshift decisions awaiting (or given) an operator's approval",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			ds, err := c.Decisions(cmd.Context())
			if err != nil {
				return failed(cmd.Context(), c, err)
			}
			if ds == nil {
				ds = []api.Decision{}
			}
			return r.render(stdout, ds, func(w io.Writer) {
				if len(ds) == 0 {
					fmt.Fprintln(w, "no decisions")
					return
				}
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tRESOURCE\tZONE\tSTATUS\tTIME\tAPPROVED_BY\tWHY")
				for _, d := range ds {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(d.ID), clean(d.Resource), clean(d.Zone),
						clean(d.Status), d.At.UTC().Format(time.RFC3339), dash(d.ApprovedBy), clean(d.Why))
				}
				tw.Flush()
			})
		},
	}
	r.addServer(cmd)
	r.addOutput(cmd)
	return cmd
}

func newApproveCmd(stdout io.Writer) *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:   "approve ID",
		Short: "Approve a pending autoshift decision (see grayzone decisions)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			d, err := c.Approve(cmd.Context(), args[0])
			if err != nil {
				return failed(cmd.Context(), c, err)
			}
			return r.render(stdout, d, func(w io.Writer) {
				fmt.Fprintf(w, "approved decision %s: shift %s away from %s (%s)\n",
					clean(d.ID), clean(d.Resource), clean(d.Zone), clean(d.Why))
			})
		},
	}
	r.addServer(cmd)
	r.addOutput(cmd)
	return cmd
}

// clean replaces control characters, so a comment or reason cannot move the
// cursor, recolor the terminal or break a table's columns.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return clean(s)
}
