package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/internal/duration"
	"github.com/grayzone/grayzone/server/api"
)

func newShiftCmd(stdout, _ io.Writer) *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:   "shift",
		Short: "Start, update, cancel and list zonal shifts on a running grayzone serve",
		Long: `A zonal shift moves a resource's traffic away from one zone until it expires
(1m..72h) or is canceled. Only one zone of a resource can be shifted at a time.

The server is --server, else $GRAYZONE_SERVER, else ` + defaultServer + `; changes
need the bearer token in $GRAYZONE_TOKEN.

Exit status: 0 done, 1 the server failed or could not be reached, 2 the
request was refused (bad input, no token, unknown shift, conflict).`,
		Example: `  grayzone shift start --resource web --away-from use2-az1 --expires-in 30m --comment "elevated 5xx in az1"
  grayzone shift list --status ACTIVE
  grayzone shift update gzs-1a2b3c4d5e6f --expires-in 2h
  grayzone shift cancel gzs-1a2b3c4d5e6f`,
	}
	r.addServer(cmd)
	cmd.AddCommand(
		newShiftStartCmd(stdout, &r),
		newShiftUpdateCmd(stdout, &r),
		newShiftCancelCmd(stdout, &r),
		newShiftGetCmd(stdout, &r),
		newShiftListCmd(stdout, &r),
	)
	return cmd
}

func newShiftStartCmd(stdout io.Writer, r *remote) *cobra.Command {
	var (
		req       api.StartShiftRequest
		expiresIn time.Duration
	)
	cmd := &cobra.Command{
		Use:   "start --resource R --away-from ZONE --expires-in D [--comment C]",
		Short: "Shift a resource's traffic away from a zone",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			req.ExpiresIn = expiresIn.String()
			s, err := c.StartShift(cmd.Context(), req)
			if err != nil {
				return failed(cmd.Context(), c, err)
			}
			return r.render(stdout, s, func(w io.Writer) {
				// The id alone on the first line, for scripts: ID=$(grayzone shift start ... | head -1)
				fmt.Fprintln(w, clean(s.ID))
				fmt.Fprintf(w, "shifted %s away from %s until %s (%s)%s\n", clean(s.Resource), clean(s.AwayFrom),
					s.ExpiresAt.UTC().Format(time.RFC3339), shortDuration(expiresIn), commentSuffix(s.Comment))
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Resource, "resource", "", "the resource to shift (required)")
	f.StringVar(&req.AwayFrom, "away-from", "", "the zone to move traffic away from (required)")
	f.DurationVar(&expiresIn, "expires-in", 0, "how long the shift lasts, 1m..72h, e.g. 30m (required)")
	f.StringVar(&req.Comment, "comment", "", "why, for the audit log (at most 128 characters)")
	for _, name := range []string{"resource", "away-from", "expires-in"} {
		_ = cmd.MarkFlagRequired(name) // fails only for a flag that does not exist
	}
	r.addOutput(cmd)
	return cmd
}

func newShiftUpdateCmd(stdout io.Writer, r *remote) *cobra.Command {
	var (
		expiresIn time.Duration
		comment   string
	)
	cmd := &cobra.Command{
		Use:   "update ID [--expires-in D] [--comment C]",
		Short: "Change an active shift's expiry (from now) or comment",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req api.UpdateShiftRequest
			// Only what was given changes: --comment "" clears the comment.
			if cmd.Flags().Changed("expires-in") {
				d := expiresIn.String()
				req.ExpiresIn = &d
			}
			if cmd.Flags().Changed("comment") {
				req.Comment = &comment
			}
			if req.ExpiresIn == nil && req.Comment == nil {
				return usageErr("nothing to update: give --expires-in and/or --comment")
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			s, err := c.UpdateShift(cmd.Context(), args[0], req)
			if err != nil {
				return failed(cmd.Context(), c, err)
			}
			return r.render(stdout, s, func(w io.Writer) {
				fmt.Fprintf(w, "updated shift %s: %s away from %s until %s%s\n", clean(s.ID), clean(s.Resource),
					clean(s.AwayFrom), s.ExpiresAt.UTC().Format(time.RFC3339), commentSuffix(s.Comment))
			})
		},
	}
	cmd.Flags().DurationVar(&expiresIn, "expires-in", 0, "new expiry, counted from now (1m..72h)")
	cmd.Flags().StringVar(&comment, "comment", "", "new comment (replaces the old one)")
	r.addOutput(cmd)
	return cmd
}

func newShiftCancelCmd(stdout io.Writer, r *remote) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "End an active shift now, bringing traffic back to the zone",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			s, err := c.CancelShift(cmd.Context(), args[0])
			if err != nil {
				return failed(cmd.Context(), c, err)
			}
			return r.render(stdout, s, func(w io.Writer) {
				fmt.Fprintf(w, "canceled shift %s: %s is back in %s\n", clean(s.ID), clean(s.Resource), clean(s.AwayFrom))
			})
		},
	}
	r.addOutput(cmd)
	return cmd
}

func newShiftGetCmd(stdout io.Writer, r *remote) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show one shift",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			s, err := c.Shift(cmd.Context(), args[0])
			if err != nil {
				return failed(cmd.Context(), c, err)
			}
			return r.render(stdout, s, func(w io.Writer) { printShift(w, s) })
		},
	}
	r.addOutput(cmd)
	return cmd
}

func printShift(w io.Writer, s shift.Shift) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("id", clean(s.ID))
	row("resource", clean(s.Resource))
	row("away_from", clean(s.AwayFrom))
	row("status", clean(string(s.Status)))
	row("origin", clean(string(s.Origin)))
	row("comment", dash(s.Comment))
	row("started", fmt.Sprintf("%s by %s", s.StartedAt.UTC().Format(time.RFC3339), dash(s.StartedBy)))
	row("expires", s.ExpiresAt.UTC().Format(time.RFC3339))
	if s.Reason != "" {
		row("reason", clean(s.Reason))
	}
	if s.UpdatedBy != "" {
		row("updated", fmt.Sprintf("%s by %s", s.UpdatedAt.UTC().Format(time.RFC3339), clean(s.UpdatedBy)))
	}
	if s.EndedAt != nil {
		row("ended", fmt.Sprintf("%s by %s", s.EndedAt.UTC().Format(time.RFC3339), dash(s.EndedBy)))
	}
	if s.ARCZonalShiftID != "" {
		row("arc_zonal_shift_id", clean(s.ARCZonalShiftID))
	}
	tw.Flush()
}

func newShiftListCmd(stdout io.Writer, r *remote) *cobra.Command {
	var resource, status string
	cmd := &cobra.Command{
		Use:   "list [--resource R] [--status ACTIVE|EXPIRED|CANCELED]",
		Short: "List shifts, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			ss, err := c.Shifts(cmd.Context(), shift.ListFilter{Resource: resource, Status: shift.Status(strings.ToUpper(status))})
			if err != nil {
				return failed(cmd.Context(), c, err)
			}
			if ss == nil {
				ss = []shift.Shift{} // [] rather than null for JSON consumers
			}
			return r.render(stdout, ss, func(w io.Writer) {
				if len(ss) == 0 {
					fmt.Fprintln(w, "no shifts")
					return
				}
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tRESOURCE\tAWAY_FROM\tSTATUS\tORIGIN\tSTARTED\tEXPIRES\tCOMMENT")
				for _, s := range ss {
					origin := string(s.Origin)
					if s.Origin == shift.External { // who: arc:ZONAL_AUTOSHIFT, arc:ZONAL_SHIFT, ...
						origin += " (" + s.StartedBy + ")"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(s.ID), clean(s.Resource), clean(s.AwayFrom),
						clean(string(s.Status)), clean(origin), s.StartedAt.UTC().Format(time.RFC3339), s.ExpiresAt.UTC().Format(time.RFC3339), dash(s.Comment))
				}
				tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&resource, "resource", "", "only this resource's shifts")
	cmd.Flags().StringVar(&status, "status", "", "only shifts in this status: ACTIVE, EXPIRED or CANCELED")
	r.addOutput(cmd)
	return cmd
}

func commentSuffix(c string) string {
	if c == "" {
		return ""
	}
	return ": " + clean(c)
}

// shortDuration prints 30m rather than 30m0s.
func shortDuration(d time.Duration) string { return duration.Format(d) }
