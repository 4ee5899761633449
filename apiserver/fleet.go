// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/fleet"
)

// maxFleetEvents is how many recent events the fleet page shows.
const maxFleetEvents = 50

// Summary is this host's part of the fleet view (GET .../summary): its
// sources, counts per kind and phase, unhealthy resources and recent
// events.
func (s *Server) Summary() *fleet.Summary {
	sum := &fleet.Summary{Host: s.opts.Host, Version: s.opts.Version, Counts: []fleet.KindCount{}, Unhealthy: []fleet.Resource{}}
	if s.opts.Sources != nil {
		sum.Sources = s.opts.Sources()
	}
	for _, k := range v1alpha1.Kinds {
		kc := fleet.KindCount{Kind: k.Kind, Plural: k.Plural, Phases: map[string]int{}}
		for _, o := range s.opts.Store.List(k.Kind) {
			row := s.rowFor(k, o)
			kc.Total++
			kc.Phases[row.Phase]++
			if !row.Healthy() {
				kc.Unhealthy++
				sum.Unhealthy = append(sum.Unhealthy, fleet.Resource{Kind: k.Kind, Plural: k.Plural, Name: row.Name, Phase: row.Phase, Reason: row.Reason, Message: row.Message})
			}
		}
		if kc.Total > 0 {
			sum.Counts = append(sum.Counts, kc)
		}
	}
	sum.Problems = len(s.opts.Store.Problems())
	if s.opts.Events != nil {
		evs := s.opts.Events.List("", "")
		if len(evs) > maxPageEvents {
			evs = evs[len(evs)-maxPageEvents:]
		}
		sum.Events = evs
	}
	return sum
}

// LocalList is this host's part of a fleet-wide list: a kind (by plural)
// as another host's fleet view would read it (secrets redacted).
func (s *Server) LocalList(plural, selector string) ([]json.RawMessage, error) {
	ki, ok := v1alpha1.LookupKind(plural)
	if !ok {
		return nil, fmt.Errorf("unknown resource %q", plural)
	}
	sel, err := labels.Parse(selector)
	if err != nil {
		return nil, err
	}
	out := []json.RawMessage{}
	for _, o := range s.listItems(ki, sel, func(o v1alpha1.Object) v1alpha1.Object { return v1alpha1.RedactSecrets(s.overlay(o)) }) {
		b, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// hostList is the store's Host resources.
func (s *Server) hostList() []*v1alpha1.Host {
	return fleet.HostsOf(s.opts.Store.List(v1alpha1.KindHost))
}

// prometheusSD is GET /sd/prometheus: the Hosts as Prometheus HTTP service
// discovery target groups.
func (s *Server) prometheusSD(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, fleet.TargetGroups(s.hostList()))
}

// fleetHosts is GET .../fleet/hosts: every host's summary, or why it has
// none.
func (s *Server) fleetHosts(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"kind": "HostSummaryList", "items": s.opts.Fleet.Hosts(r.Context())})
}

// fleetList is GET .../fleet/{plural}: a kind listed on every host
// (reconcilectl get KIND --all-hosts).
func (s *Server) fleetList(w http.ResponseWriter, r *http.Request) {
	ki, ok := kindOf(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"kind": ki.Kind + "FleetList", "items": s.opts.Fleet.List(r.Context(), ki.Plural, r.URL.Query().Get("labelSelector"))})
}

// fleetPage data.
type fleetOverview struct {
	Hosts                            []fleetHostRow
	Total, Unreachable, UnhealthyAll int
	Unhealthy                        []fleetResourceRow
	Events                           []fleetEventRow
}

type fleetHostRow struct {
	fleet.HostView
	Commit, Counts, Health string
	Unhealthy              int
}

type fleetResourceRow struct {
	Host, URL string
	fleet.Resource
}

type fleetEventRow struct {
	Host, URL string
	pageEvent
	at time.Time
}

// fleetPage is GET /fleet: every Host (reachable or not, applied commit,
// counts per phase), then every unhealthy resource across hosts, then
// recent events across hosts, each linking to that host's own page.
func (s *Server) fleetPage(w http.ResponseWriter, r *http.Request) {
	var ov fleetOverview
	now := time.Now()
	for _, h := range s.opts.Fleet.Hosts(r.Context()) {
		row := fleetHostRow{HostView: h, Commit: "-", Health: healthOK}
		ov.Total++
		if h.Summary == nil {
			row.Health = healthBad
			ov.Unreachable++
			ov.Hosts = append(ov.Hosts, row)
			continue
		}
		for _, src := range h.Summary.Sources {
			if src.Commit != "" {
				row.Commit = src.Commit[:min(12, len(src.Commit))]
			}
			if !src.Ready {
				row.Health = healthWarn
			}
		}
		var counts []string
		for _, kc := range h.Summary.Counts {
			phases := make([]string, 0, len(kc.Phases))
			for p, n := range kc.Phases {
				phases = append(phases, p+" "+strconv.Itoa(n))
			}
			sort.Strings(phases)
			counts = append(counts, kc.Kind+": "+strings.Join(phases, ", "))
		}
		row.Counts = strings.Join(counts, "; ")
		row.Unhealthy = len(h.Summary.Unhealthy)
		if row.Unhealthy > 0 {
			row.Health = healthBad
		}
		ov.UnhealthyAll += row.Unhealthy
		for _, res := range h.Summary.Unhealthy {
			ov.Unhealthy = append(ov.Unhealthy, fleetResourceRow{Host: h.Name, URL: h.URL(), Resource: res})
		}
		for _, ev := range h.Summary.Events {
			ov.Events = append(ov.Events, fleetEventRow{Host: h.Name, URL: h.URL(), pageEvent: toPageEvent(ev, now), at: ev.LastTimestamp.Time})
		}
		ov.Hosts = append(ov.Hosts, row)
	}
	sort.SliceStable(ov.Hosts, func(i, j int) bool { return healthRank(ov.Hosts[i].Health) < healthRank(ov.Hosts[j].Health) })
	sort.SliceStable(ov.Events, func(i, j int) bool { return ov.Events[i].at.After(ov.Events[j].at) })
	if len(ov.Events) > maxFleetEvents {
		ov.Events = ov.Events[:maxFleetEvents]
	}
	render(w, http.StatusOK, "fleet.html", ov)
}
