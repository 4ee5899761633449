// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apiserver

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/history"
)

// checkGraph is an inline SVG of a Check's history over one range: the
// level bands of its rules shaded behind, the min-max spread as an area,
// the mean as a line, failed evaluations as red dots.
type checkGraph struct {
	Range      string
	W, H       int
	Bands      []graphBand
	Mean, Area string
	Fails      []sparkPoint
	Points     int
	Lo, Hi     string // the value axis
	From, To   string // the time axis
	Small      bool   // a sparkline: no labels
}

// graphBand is the shaded part of the graph where a rule gives Level.
type graphBand struct {
	Level string
	Rank  int
	Y, H  float64
}

// checkGraph draws a Check's history over rangeName; nil without one.
func (s *Server) checkGraph(c *v1alpha1.Check, rangeName string, w, h int, small bool) *checkGraph {
	if s.opts.History == nil {
		return nil
	}
	points, err := s.opts.History(v1alpha1.KindCheck, c.Name, rangeName)
	if err != nil {
		return nil
	}
	return newCheckGraph(c, rangeName, points, w, h, small)
}

func newCheckGraph(c *v1alpha1.Check, rangeName string, points []history.Point, w, h int, small bool) *checkGraph {
	g := &checkGraph{Range: rangeName, W: w, H: h, Points: len(points), Small: small}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range points {
		if p.N > 0 {
			lo, hi = min(lo, p.Min), max(hi, p.Max)
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = 0, 1
	}
	// The thresholds near the values are on the graph: the bands show how
	// close the value runs to the next level.
	for _, r := range c.Spec.Levels {
		for _, t := range []*float64{r.Above, r.Below} {
			if t != nil && *t >= lo-(hi-lo)-1 && *t <= hi+(hi-lo)+1 {
				lo, hi = min(lo, *t), max(hi, *t)
			}
		}
	}
	if hi == lo {
		hi = lo + 1
	}
	pad := (hi - lo) * 0.05
	lo, hi = lo-pad, hi+pad
	top, bottom := 2.0, float64(h-2)
	y := func(v float64) float64 { return round1(bottom - (v-lo)/(hi-lo)*(bottom-top)) }
	// The first matching rule wins: draw the rules last to first, so the
	// first is on top.
	for i := len(c.Spec.Levels) - 1; i >= 0; i-- {
		r := c.Spec.Levels[i]
		b := graphBand{Level: r.Level, Rank: c.Spec.Rank(r.Level)}
		switch {
		case r.Above != nil && *r.Above < hi:
			b.Y, b.H = top, max(0, y(*r.Above)-top)
		case r.Below != nil && *r.Below > lo:
			b.Y = y(*r.Below)
			b.H = bottom - b.Y
		default:
			continue
		}
		g.Bands = append(g.Bands, b)
	}
	if len(points) == 0 {
		return g
	}
	t0, t1 := points[0].T, points[len(points)-1].T
	if r, ok := history.LookupRange(rangeName); ok {
		t0 = t1.Add(-r.Step * time.Duration(r.Slots-1))
	}
	span := t1.Sub(t0).Seconds()
	x := func(i int) float64 {
		if span <= 0 {
			return float64(w) / 2
		}
		return round1(2 + points[i].T.Sub(t0).Seconds()/span*float64(w-4))
	}
	var mean, upper, lower []string
	for i, p := range points {
		if p.Failures > 0 {
			g.Fails = append(g.Fails, sparkPoint{X: x(i), Y: bottom - 2})
		}
		if p.N == 0 {
			continue
		}
		mean = append(mean, fmt.Sprintf("%.1f,%.1f", x(i), y(p.Mean)))
		upper = append(upper, fmt.Sprintf("%.1f,%.1f", x(i), y(p.Max)))
		lower = append([]string{fmt.Sprintf("%.1f,%.1f", x(i), y(p.Min))}, lower...)
	}
	if len(mean) == 1 { // one bucket so far: a short stroke, not an invisible point
		mean = append(mean, mean[0])
		if x0, y0, ok := strings.Cut(mean[0], ","); ok {
			if xv, err := strconv.ParseFloat(x0, 64); err == nil {
				mean[0] = fmt.Sprintf("%.1f,%s", max(0, xv-4), y0)
			}
		}
	}
	g.Mean = strings.Join(mean, " ")
	g.Area = strings.Join(append(upper, lower...), " ")
	g.Lo, g.Hi = v1alpha1.FormatValue(lo+pad), v1alpha1.FormatValue(hi-pad)
	g.From, g.To = t0.Local().Format("Jan 2 15:04"), t1.Local().Format("Jan 2 15:04")
	return g
}
