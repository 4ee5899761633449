// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"io"
	"math"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/apiserver"
	"github.com/reconciled/reconciled/history"
)

func newHistory(g *globals) *cobra.Command {
	var rng string
	var table bool
	cmd := &cobra.Command{
		Use:   "history check/NAME | link/NAME [--range hour|day|week|month|year]",
		Short: "Print a Check's values (with its level thresholds) or a Link's latency over time: a chart, or a table",
		Example: `  reconcilectl history check/root-usage --range week
  reconcilectl history chk root-usage --table
  reconcilectl history link/a2rtr --range day      # latency in seconds, failed probes marked`,
		ValidArgsFunction: completeTargets(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && !strings.Contains(args[0], "/") {
				args = []string{"check/" + args[0]}
			}
			ki, name, err := parseRef(args)
			if err != nil {
				return err
			}
			if ki.Kind != v1alpha1.KindCheck && ki.Kind != v1alpha1.KindLink {
				return usagef("history works on checks and links")
			}
			if _, ok := history.LookupRange(rng); !ok {
				return usagef("--range: one of %s", strings.Join(history.RangeNames(), ", "))
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var h apiserver.CheckHistory
			path := apiserver.BasePath + "/" + ki.Plural + "/" + url.PathEscape(name)
			if err := c.getJSON(cmd.Context(), path+"/history?range="+rng, &h); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if table {
				printHistoryTable(out, h)
				return nil
			}
			if ki.Kind == v1alpha1.KindLink {
				var l v1alpha1.Link
				if err := c.getJSON(cmd.Context(), path, &l); err != nil {
					return err
				}
				printChart(out, fmt.Sprintf("link/%s  phase %s  latency in seconds", name, l.Status.Phase), nil, h)
				return nil
			}
			var chk v1alpha1.Check
			if err := c.getJSON(cmd.Context(), path, &chk); err != nil {
				return err
			}
			printCheckChart(out, &chk, h)
			return nil
		},
	}
	cmd.Flags().StringVar(&rng, "range", "hour", "the span: hour (per minute), day (per 10 minutes), week (per hour), month (per 4 hours), year (per 2 days)")
	cmd.Flags().BoolVar(&table, "table", false, "print every bucket (time, min, mean, max, values, failures) instead of a chart")
	return cmd
}

func printHistoryTable(w io.Writer, h apiserver.CheckHistory) {
	fmt.Fprintf(w, "%-20s %10s %10s %10s %6s %8s\n", "TIME", "MIN", "MEAN", "MAX", "VALUES", "FAILURES")
	for _, p := range h.Points {
		if p.N == 0 {
			fmt.Fprintf(w, "%-20s %10s %10s %10s %6d %8d\n", p.T.Local().Format("2006-01-02 15:04"), "-", "-", "-", 0, p.Failures)
			continue
		}
		fmt.Fprintf(w, "%-20s %10s %10s %10s %6d %8d\n", p.T.Local().Format("2006-01-02 15:04"),
			v1alpha1.FormatValue(p.Min), v1alpha1.FormatValue(p.Mean), v1alpha1.FormatValue(p.Max), p.N, p.Failures)
	}
}

// chartRows is the height of the terminal chart.
const chartRows = 10

// printCheckChart is printChart for a Check, its level thresholds marked.
func printCheckChart(w io.Writer, c *v1alpha1.Check, h apiserver.CheckHistory) {
	value := "-"
	if c.Status.Value != nil {
		value = v1alpha1.FormatValue(*c.Status.Value)
	}
	printChart(w, fmt.Sprintf("check/%s  level %s  value %s", c.Name, c.Status.Level, value), c.Spec.Levels, h)
}

// printChart draws the means as a column chart, one column per bucket
// (at most 72: neighbours are merged), with the levels' thresholds marked
// on the axis and a line for failed evaluations.
func printChart(w io.Writer, title string, levels []v1alpha1.LevelRule, h apiserver.CheckHistory) {
	fmt.Fprintf(w, "%s  range %s (per %s)\n", title, h.Range, h.Step)
	cols := mergePoints(h.Points, 72)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range cols {
		if p.N > 0 {
			lo, hi = min(lo, p.Min), max(hi, p.Max)
		}
	}
	if math.IsInf(lo, 0) {
		fmt.Fprintln(w, "no values in this range")
		return
	}
	for _, r := range levels { // show the thresholds that fall near the values
		for _, t := range []*float64{r.Above, r.Below} {
			if t != nil && *t >= lo-(hi-lo) && *t <= hi+(hi-lo)+1 {
				lo, hi = min(lo, *t), max(hi, *t)
			}
		}
	}
	if hi == lo {
		hi = lo + 1
	}
	rowOf := func(v float64) int { return int(math.Round((v - lo) / (hi - lo) * (chartRows - 1))) }
	marks := map[int]string{}
	for _, r := range levels {
		for _, t := range []*float64{r.Above, r.Below} {
			if t != nil && *t >= lo && *t <= hi {
				if m := marks[rowOf(*t)]; m != "" {
					marks[rowOf(*t)] = m + ", " + r.Level
				} else {
					marks[rowOf(*t)] = r.Level
				}
			}
		}
	}
	for row := chartRows - 1; row >= 0; row-- {
		label := v1alpha1.FormatValue(lo + (hi-lo)*float64(row)/(chartRows-1))
		var b strings.Builder
		for _, p := range cols {
			switch {
			case p.N == 0:
				b.WriteByte(' ')
			case rowOf(p.Mean) >= row:
				b.WriteString("█")
			case rowOf(p.Max) >= row:
				b.WriteString("╎")
			default:
				b.WriteByte(' ')
			}
		}
		mark := ""
		if m, ok := marks[row]; ok {
			mark = "  ◂ " + m
		}
		fmt.Fprintf(w, "%10s ┤%s%s\n", label, b.String(), mark)
	}
	var fails strings.Builder
	failed := false
	for _, p := range cols {
		if p.Failures > 0 {
			fails.WriteByte('x')
			failed = true
		} else {
			fails.WriteByte(' ')
		}
	}
	if failed {
		fmt.Fprintf(w, "%10s  %s\n", "failed", fails.String())
	}
	fmt.Fprintf(w, "%10s  %s … %s\n", "", cols[0].T.Local().Format("Jan 2 15:04"), cols[len(cols)-1].T.Local().Format("Jan 2 15:04"))
}

// mergePoints merges neighbouring buckets so that at most n remain.
func mergePoints(ps []history.Point, n int) []history.Point {
	if len(ps) <= n {
		return ps
	}
	per := (len(ps) + n - 1) / n
	var out []history.Point
	for i := 0; i < len(ps); i += per {
		m := history.Point{T: ps[i].T, Min: math.Inf(1), Max: math.Inf(-1)}
		sum := 0.0
		for _, p := range ps[i:min(i+per, len(ps))] {
			m.Failures += p.Failures
			if p.N == 0 {
				continue
			}
			m.Min, m.Max = min(m.Min, p.Min), max(m.Max, p.Max)
			sum += p.Mean * float64(p.N)
			m.N += p.N
		}
		if m.N > 0 {
			m.Mean = sum / float64(m.N)
		}
		out = append(out, m)
	}
	return out
}
