// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package fleet is the central view of many hosts, built on what each
// host already serves: Prometheus discovers the hosts from the Host
// resources (TargetGroups, GET /sd/prometheus), and the fleet page and
// `reconcilectl get KIND --all-hosts` read each host's API concurrently,
// bounded, with timeouts and a short cache (View). There is no central
// server: any daemon can draw the page, and a host that does not answer is
// shown as such and blocks nothing.
package fleet

import (
	"regexp"
	"sort"
	"strings"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// TargetGroup is one entry of Prometheus' HTTP service discovery answer
// (https://prometheus.io/docs/prometheus/latest/http_sd/).
type TargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// LabelHost is the target label naming the host.
const LabelHost = "host"

var invalidLabelChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// promLabel turns a Kubernetes label key into a Prometheus label name:
// the prefix (reconciled.dev/, example.com/) is dropped and other
// characters become underscores. "" when nothing usable is left or the
// name is reserved (__*) or is the host label.
func promLabel(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		key = key[i+1:]
	}
	name := invalidLabelChars.ReplaceAllString(key, "_")
	if name == "" || strings.HasPrefix(name, "__") || name == LabelHost || name == "job" || name == "instance" || (name[0] >= '0' && name[0] <= '9') {
		return ""
	}
	return name
}

// TargetGroups returns one target group per Host with an address: its
// /metrics address, labelled host=<name> and with the Host's labels
// (role, site...) as Prometheus label names. Hosts without an address are
// left out (Prometheus cannot scrape them). Sorted by host name.
func TargetGroups(hosts []*v1alpha1.Host) []TargetGroup {
	out := []TargetGroup{}
	for _, h := range hosts {
		if h.Spec.Address == "" {
			continue
		}
		labels := map[string]string{LabelHost: h.Name}
		keys := make([]string, 0, len(h.Labels))
		for k := range h.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys) // two keys mapping to one name: the first wins
		for _, k := range keys {
			if name := promLabel(k); name != "" {
				if _, taken := labels[name]; !taken {
					labels[name] = h.Labels[k]
				}
			}
		}
		out = append(out, TargetGroup{Targets: []string{h.Spec.Address}, Labels: labels})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Labels[LabelHost] < out[j].Labels[LabelHost] })
	return out
}

// HostsOf returns the Hosts among objs (a store's list of kind Host).
func HostsOf(objs []v1alpha1.Object) []*v1alpha1.Host {
	out := make([]*v1alpha1.Host, 0, len(objs))
	for _, o := range objs {
		if h, ok := o.(*v1alpha1.Host); ok {
			out = append(out, h)
		}
	}
	return out
}
