// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apiserver

import (
	"net/http"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/history"
)

type kv struct{ K, V string }

type pageCondition struct {
	Type, Status, Reason, Message, Age string
	Health                             string
}

type detailEvent struct {
	pageEvent
	Span string // "x3 over 5m"
}

type detail struct {
	Row         pageRow
	Generation  int64
	Created     string
	Labels      []kv
	Annotations []kv
	Spec        string
	Status      string
	Conditions  []pageCondition
	Events      []detailEvent
	HasEvents   bool
	Spark       *sparkline
	Probes      []liveProbeRow
	// Graphs are a Check's history, one per range.
	Graphs []*checkGraph
}

type liveProbeRow struct {
	Age, Latency, Reason string
	OK                   bool
}

// detailPage shows one resource like reconcilectl describe: metadata,
// spec, status, conditions, events and, for links, the probe history.
func (s *Server) detailPage(w http.ResponseWriter, r *http.Request) {
	k, ok := v1alpha1.LookupKind(r.PathValue("plural"))
	name := r.PathValue("name")
	var o v1alpha1.Object
	if ok {
		o, ok = s.opts.Store.View(k.Kind, name)
	}
	if !ok {
		render(w, http.StatusNotFound, "notfound.html", struct{ Plural, Name string }{r.PathValue("plural"), name})
		return
	}
	// The page needs no token: environment values are never shown on it.
	o = v1alpha1.RedactSecrets(s.overlay(o))
	now := time.Now()
	m := o.GetObjectMeta()
	d := detail{Row: s.rowFor(k, o), Generation: m.Generation, Labels: sortedKV(m.Labels), Annotations: sortedKV(m.Annotations)}
	if m.CreationTimestamp != nil {
		d.Created = m.CreationTimestamp.UTC().Format(time.RFC3339) + " (" + age(now, m.CreationTimestamp.Time) + " ago)"
	}
	if c, ok := o.(*v1alpha1.Check); ok {
		for _, r := range history.Ranges {
			if g := s.checkGraph(c, r.Name, 600, 120, false); g != nil {
				d.Graphs = append(d.Graphs, g)
			}
		}
	}
	d.Spec = toYAML(o.GetSpec())
	d.Status = toYAML(o.GetStatus())
	for _, c := range o.GetCommonStatus().Conditions {
		pc := pageCondition{Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: c.Message,
			Age: age(now, c.LastTransitionTime.Time), Health: healthOK}
		switch {
		case c.Status == "False":
			pc.Health = healthBad
		case c.Status != "True":
			pc.Health = healthWarn
		}
		d.Conditions = append(d.Conditions, pc)
	}
	if s.opts.Events != nil {
		d.HasEvents = true
		for _, ev := range s.opts.Events.List(k.Kind, name) {
			de := detailEvent{pageEvent: toPageEvent(ev, now)}
			if ev.Count > 1 {
				de.Span = " over " + age(now, ev.FirstTimestamp.Time)
			}
			d.Events = append(d.Events, de)
		}
	}
	if k.Kind == v1alpha1.KindLink {
		d.Spark = s.linkSparkline(name, 360, 60)
		if d.Spark != nil {
			h := d.Spark.History
			for i := len(h) - 1; i >= 0 && len(h)-i <= 10; i-- {
				d.Probes = append(d.Probes, liveProbeRow{Age: age(now, h[i].At), Latency: h[i].Latency, Reason: h[i].Reason, OK: h[i].OK})
			}
		}
	}
	render(w, http.StatusOK, "detail.html", d)
}

func sortedKV(m map[string]string) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].K < out[j].K })
	return out
}

func toYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimRight(string(b), "\n")
}
