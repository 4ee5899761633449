// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package alerting

import (
	"path"
	"slices"
	"strings"

	"github.com/reconciled/reconciled/alerting/receivers"
	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// severityLevel ranks a severity: info < warning < critical. Unknown or
// empty severities rank as info.
func severityLevel(s string) int {
	switch strings.ToLower(s) {
	case v1alpha1.SeverityCritical:
		return 2
	case v1alpha1.SeverityWarning:
		return 1
	default:
		return 0
	}
}

// matcher is a compiled AlertMatch.
type matcher struct {
	kinds       []string // canonical kind names where known
	names       []string
	labels      map[string]string
	minSeverity int
	levels      []string // of Check alerts: the level label
	fromLevels  []string // the previousLevel label
}

func newMatcher(m v1alpha1.AlertMatch) matcher {
	mt := matcher{
		names:       append([]string(nil), m.Names...),
		minSeverity: severityLevel(m.Severity),
		levels:      slices.Clone(m.Levels),
		fromLevels:  slices.Clone(m.FromLevels),
	}
	for _, k := range m.Kinds {
		if ki, ok := v1alpha1.LookupKind(k); ok {
			k = ki.Kind
		}
		mt.kinds = append(mt.kinds, k)
	}
	if len(m.Labels) > 0 {
		mt.labels = make(map[string]string, len(m.Labels))
		for k, v := range m.Labels {
			mt.labels[k] = v
		}
	}
	return mt
}

// matches reports whether a is selected: its kind is one of kinds (case
// insensitive), its object matches one of the name globs, it carries every
// label with the same value, its severity is at least the minimum, and
// (for levels and fromLevels) its level and previous level are listed.
// Empty kinds, names and labels select everything.
func (m matcher) matches(a receivers.Alert) bool {
	if severityLevel(a.Severity) < m.minSeverity {
		return false
	}
	if len(m.kinds) > 0 {
		ok := false
		for _, k := range m.kinds {
			if strings.EqualFold(k, a.Kind) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(m.names) > 0 {
		ok := false
		for _, pat := range m.names {
			if match, err := path.Match(pat, a.Object); err == nil && match {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for k, v := range m.labels {
		if got, ok := a.Labels[k]; !ok || got != v {
			return false
		}
	}
	if len(m.levels) > 0 && !slices.Contains(m.levels, a.Labels[receivers.LabelLevel]) {
		return false
	}
	if len(m.fromLevels) > 0 && !slices.Contains(m.fromLevels, a.Labels[receivers.LabelPreviousLevel]) {
		return false
	}
	return true
}
