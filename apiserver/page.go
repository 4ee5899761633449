// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apiserver

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/resources"
)

// The status page and the detail pages are server-rendered from the
// templates under templates/; html/template escapes every value. They use
// no external fonts, scripts or stylesheets and work without JavaScript (a
// tiny inline script refreshes the overview every 5 s when it can).

//go:embed templates/*.html
var pageFS embed.FS

var pageTmpl = template.Must(template.New("").Funcs(template.FuncMap{
	"basePath": func() string { return BasePath },
}).ParseFS(pageFS, "templates/*.html"))

// maxPageEvents is how many recent events the overview shows.
const maxPageEvents = 20

// Health classes, also the CSS classes of the phase cells.
const (
	healthBad  = "bad"
	healthWarn = "warn"
	healthOK   = "ok"
)

func healthRank(h string) int {
	switch h {
	case healthBad:
		return 0
	case healthWarn:
		return 1
	}
	return 2
}

type pageRow struct {
	Kind, Plural, Name, Phase, Ready, Reason, Message string
	// Health is healthBad, healthWarn or healthOK.
	Health string
	// Detail is a kind-specific figure: a Process's restarts.
	Detail string
	// Spark is the latency history of a Link.
	Spark *sparkline
	// Graph is the last hour of a Check.
	Graph *checkGraph
}

// Healthy reports whether the row counts as healthy.
func (r pageRow) Healthy() bool { return r.Health == healthOK }

type kindCount struct {
	Kind, Plural     string
	Total, Unhealthy int
}

type pageEvent struct {
	Type, Reason, Kind, Plural, Name, Age, Message, Source string
	Count                                                  int32
	Warning                                                bool
}

type overview struct {
	// Problems are the files that define nothing because they are broken
	// (a bad kind, YAML that does not parse, an untrusted file): shown
	// first, as unhealthy.
	Problems  []pageProblem
	Counts    []kindCount
	Total     int
	Unhealthy int
	Rows      []pageRow
	Events    []pageEvent
	HasEvents bool
}

// pageProblem is one input problem on the status page.
type pageProblem struct{ Where, Reason, Message string }

// toPageProblem places a problem at its file and line.
func toPageProblem(p resources.Problem) pageProblem {
	where, msg := p.Locate()
	return pageProblem{Where: where, Reason: p.Reason, Message: msg}
}

// rowFor summarises one resource.
func (s *Server) rowFor(k v1alpha1.KindInfo, o v1alpha1.Object) pageRow {
	o = s.overlay(o)
	cs := o.GetCommonStatus()
	row := pageRow{Kind: k.Kind, Plural: k.Plural, Name: o.GetObjectMeta().Name, Phase: cs.Phase, Health: healthOK}
	if c := cs.Condition(v1alpha1.ConditionReady); c != nil {
		row.Ready, row.Reason, row.Message = string(c.Status), c.Reason, c.Message
		switch {
		case c.Status == "False":
			row.Health = healthBad
		case c.Status != "True" || strings.Contains(c.Reason, "Degraded"):
			row.Health = healthWarn
		}
		if c.Reason == v1alpha1.ReasonInvalidSpec {
			row.Phase, row.Health = "Invalid", healthBad
		}
	}
	if row.Phase == "" {
		row.Phase = "-"
	}
	switch st := o.GetStatus().(type) {
	case *v1alpha1.ProcessStatus:
		row.Detail = fmt.Sprintf("restarts %d", st.Restarts)
		if st.Message != "" && row.Message == "" {
			row.Message = st.Message
		}
	}
	if c, ok := o.(*v1alpha1.Check); ok {
		// The level is the health: the better half of the levels below
		// the best is a warning, the worse half bad.
		if rank := c.Spec.Rank(c.Status.Level); rank > 0 && row.Health != healthBad {
			row.Health = healthWarn
			if 2*rank >= len(c.Spec.Names())-1 {
				row.Health = healthBad
			}
		}
		if c.Status.Value != nil {
			row.Detail = "value " + v1alpha1.FormatValue(*c.Status.Value)
		}
	}
	return row
}

// withGraph adds the small graph of the overview to a row: a Link's
// recent latencies, a Check's last hour. Only pages draw them (not the
// fleet summary, which other hosts ask for).
func (s *Server) withGraph(row pageRow, o v1alpha1.Object) pageRow {
	switch o := o.(type) {
	case *v1alpha1.Link:
		row.Spark = s.linkSparkline(row.Name, 120, 24)
	case *v1alpha1.Check:
		row.Graph = s.checkGraph(o, "hour", 120, 24, true)
	}
	return row
}

// statusPage is the overview: counts, every resource (unhealthy first)
// and the recent events.
func (s *Server) statusPage(w http.ResponseWriter, _ *http.Request) {
	var ov overview
	for _, p := range s.opts.Store.Problems() {
		ov.Problems = append(ov.Problems, toPageProblem(p))
	}
	for _, k := range v1alpha1.Kinds {
		kc := kindCount{Kind: k.Kind, Plural: k.Plural}
		for _, o := range s.opts.Store.List(k.Kind) {
			row := s.withGraph(s.rowFor(k, o), o)
			kc.Total++
			if !row.Healthy() {
				kc.Unhealthy++
			}
			ov.Rows = append(ov.Rows, row)
		}
		ov.Total += kc.Total
		ov.Unhealthy += kc.Unhealthy
		ov.Counts = append(ov.Counts, kc)
	}
	sort.SliceStable(ov.Rows, func(i, j int) bool {
		return healthRank(ov.Rows[i].Health) < healthRank(ov.Rows[j].Health)
	})
	if s.opts.Events != nil {
		evs := s.opts.Events.List("", "")
		if len(evs) > maxPageEvents {
			evs = evs[len(evs)-maxPageEvents:]
		}
		now := time.Now()
		for i := len(evs) - 1; i >= 0; i-- { // newest first
			ov.Events = append(ov.Events, toPageEvent(evs[i], now))
		}
		ov.HasEvents = true
	}
	render(w, http.StatusOK, "status.html", ov)
}

func toPageEvent(ev events.Event, now time.Time) pageEvent {
	pe := pageEvent{Type: ev.Type, Reason: ev.Reason, Kind: ev.Kind, Name: ev.ObjectName, Message: ev.Message, Source: ev.Source,
		Count: ev.Count, Warning: ev.Type == events.TypeWarning, Age: age(now, ev.LastTimestamp.Time)}
	if k, ok := v1alpha1.LookupKind(ev.Kind); ok {
		pe.Plural = k.Plural
	}
	return pe
}

func render(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := pageTmpl.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// age formats how long ago t was, as kubectl does (duration.HumanDuration:
// 42s, 3m20s, 5h, 2d).
func age(now, t time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t)) // as kubectl and reconcilectl show it
}
