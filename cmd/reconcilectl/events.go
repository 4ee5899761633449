// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/reconciled/reconciled/apiserver"
	"github.com/reconciled/reconciled/events"
)

func newEvents(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "events [KIND[/NAME]]",
		Short:             "List recent events, oldest first (like kubectl get events)",
		ValidArgsFunction: completeTargets(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name := "", ""
			if len(args) > 0 {
				targets, err := parseTargets(args)
				if err != nil {
					return err
				}
				if len(targets) != 1 || len(targets[0].names) > 1 {
					return usagef("want at most one KIND or KIND/NAME")
				}
				kind = targets[0].ki.Kind
				if len(targets[0].names) == 1 {
					name = targets[0].names[0]
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			evs, err := fetchEvents(cmd.Context(), c, kind, name)
			if err != nil {
				return err
			}
			if len(evs) == 0 {
				fmt.Fprintln(g.errOut, "No events found.")
				return nil
			}
			tw := tabwriter.NewWriter(g.out, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE")
			now := time.Now()
			for _, e := range evs {
				age, count := events.Describe(e, now)
				msg := e.Message
				if count != "" {
					msg += " (" + count + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s/%s\t%s\n", age, e.Type, e.Reason, strings.ToLower(e.Kind), e.ObjectName, msg)
			}
			return tw.Flush()
		},
	}
}

func fetchEvents(ctx context.Context, c *client, kind, name string) ([]events.Event, error) {
	q := url.Values{}
	if kind != "" {
		q.Set("kind", kind)
	}
	if name != "" {
		q.Set("name", name)
	}
	var l struct {
		Items []events.Event `json:"items"`
	}
	if err := c.getJSON(ctx, apiserver.BasePath+"/events?"+q.Encode(), &l); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// describeEvents prints the Events section of describe, kubectl style.
func describeEvents(w io.Writer, evs []events.Event) {
	fmt.Fprintln(w, "Events:")
	if len(evs) == 0 {
		fmt.Fprintln(w, "  <none>")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  Type\tReason\tAge\tFrom\tMessage")
	fmt.Fprintln(tw, "  ----\t------\t---\t----\t-------")
	now := time.Now()
	for _, e := range evs {
		age, count := events.Describe(e, now)
		if count != "" {
			age = count
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", e.Type, e.Reason, age, e.Source, e.Message)
	}
	tw.Flush()
}

// liveLink is the API's live view of a Link (see link.Live).
type liveLink struct {
	ConsecutiveFailures int `json:"consecutiveFailures"`
	History             []struct {
		At      time.Time `json:"at"`
		OK      bool      `json:"ok"`
		Latency string    `json:"latency"`
		Reason  string    `json:"reason"`
		Message string    `json:"message"`
	} `json:"history"`
}

// describeProbes prints a Link's recent probes, newest first.
func describeProbes(w io.Writer, l liveLink) {
	fmt.Fprintf(w, "Probes:       %d recent, %d consecutive failures\n", len(l.History), l.ConsecutiveFailures)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  Age\tResult\tLatency\tDetail")
	now := time.Now()
	for i := len(l.History) - 1; i >= 0 && i >= len(l.History)-10; i-- {
		h := l.History[i]
		res, detail := "ok", h.Message
		if !h.OK {
			res = h.Reason
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", now.Sub(h.At).Round(time.Second), res, h.Latency, truncate(detail, 80))
	}
	tw.Flush()
}

func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func newAlert(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "alert", Short: "Work with alerts"}
	cmd.AddCommand(&cobra.Command{
		Use:   "test ROUTE",
		Short: "Send a test notification through every receiver of an AlertRoute",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("want one AlertRoute name")
			}
			name := strings.TrimPrefix(strings.TrimPrefix(args[0], "alertroute/"), "ar/")
			c, err := g.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), "POST", apiserver.BasePath+"/alertroutes/"+url.PathEscape(name)+"/test")
			if err != nil {
				return err
			}
			resp.Body.Close()
			fmt.Fprintf(g.out, "alertroute/%s: test notification queued (reconcilectl describe alertroute/%s shows the result)\n", name, name)
			return nil
		},
	})
	return cmd
}
