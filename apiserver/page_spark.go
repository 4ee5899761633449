// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apiserver

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// liveProbe is the part of a Link's live view the pages use (the JSON of
// link.Live). Probe messages are left out: they may hold exec
// probe output, which the API serves only with the token.
type liveProbe struct {
	At      time.Time `json:"at"`
	OK      bool      `json:"ok"`
	Latency string    `json:"latency"`
	Seconds float64   `json:"seconds"`
	Reason  string    `json:"reason,omitempty"`
}

type linkLive struct {
	History []liveProbe `json:"history"`
}

// sparkline is an inline SVG latency history: a polyline through the
// successful probes scaled to the highest latency, failures as red dots.
type sparkline struct {
	W, H     int
	Points   string
	Fails    []sparkPoint
	Probes   int
	Failures int
	Max      string
	Last     string
	History  []liveProbe
}

type sparkPoint struct{ X, Y float64 }

// linkHistory returns a Link's recent probes, oldest first.
func (s *Server) linkHistory(name string) ([]liveProbe, bool) {
	if s.opts.Live == nil {
		return nil, false
	}
	v, ok := s.opts.Live(v1alpha1.KindLink, name)
	if !ok {
		return nil, false
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	var l linkLive
	if json.Unmarshal(b, &l) != nil {
		return nil, false
	}
	return l.History, true
}

func (s *Server) linkSparkline(name string, w, h int) *sparkline {
	hist, ok := s.linkHistory(name)
	if !ok {
		return nil
	}
	return newSparkline(hist, w, h)
}

func newSparkline(hist []liveProbe, w, h int) *sparkline {
	sp := &sparkline{W: w, H: h, Probes: len(hist), History: hist}
	slowest := 0.0
	for _, p := range hist {
		if p.OK {
			slowest = max(slowest, p.Seconds)
		}
	}
	scale := slowest
	if scale <= 0 {
		scale = 1
	}
	step := float64(w-4) / float64(max(len(hist)-1, 1))
	var pts []string
	for i, p := range hist {
		x := 2 + float64(i)*step
		if !p.OK {
			sp.Failures++
			sp.Fails = append(sp.Fails, sparkPoint{X: round1(x), Y: 4})
			continue
		}
		y := float64(h-2) - p.Seconds/scale*float64(h-6)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
	}
	sp.Points = strings.Join(pts, " ")
	sp.Max = "n/a"
	if sp.Failures < len(hist) {
		sp.Max = fmtSeconds(slowest)
	}
	if n := len(hist); n > 0 {
		if hist[n-1].OK {
			sp.Last = fmtSeconds(hist[n-1].Seconds)
		} else {
			sp.Last = "failed"
		}
	}
	return sp
}

func fmtSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

func round1(f float64) float64 { return float64(int(f*10+0.5)) / 10 }
