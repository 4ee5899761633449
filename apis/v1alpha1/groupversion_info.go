// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"sort"
	"strings"
)

const (
	// Group is the API group of every reconciled kind.
	Group = "reconciled.dev"
	// Version is the API version of this package.
	Version = "v1alpha1"
	// APIVersion is the apiVersion every resource file must carry.
	APIVersion = Group + "/" + Version
)

// Kind names, exactly as they appear in resource files.
const (
	KindProcess    = "Process"
	KindLink       = "Link"
	KindCheck      = "Check"
	KindModule     = "Module"
	KindPiNode     = "PiNode"
	KindAlertRoute = "AlertRoute"
	KindHost       = "Host"
)

// KindInfo describes one kind: how users may spell it and how to make an
// empty object of it.
type KindInfo struct {
	// Kind is the CamelCase kind name used in files ("Process").
	Kind string
	// Singular is the lower-case singular name ("process").
	Singular string
	// Plural is the lower-case plural name used in API paths ("processes").
	Plural string
	// Short holds the abbreviations the CLI accepts ("proc").
	Short []string
	// New returns an empty object of the kind with its TypeMeta set.
	New func() Object
}

// Kinds lists every kind in the order the CLI shows them.
var Kinds = []KindInfo{
	{Kind: KindProcess, Singular: "process", Plural: "processes", Short: []string{"proc"}, New: func() Object { return &Process{TypeMeta: typeMeta(KindProcess)} }},
	{Kind: KindLink, Singular: "link", Plural: "links", New: func() Object { return &Link{TypeMeta: typeMeta(KindLink)} }},
	{Kind: KindCheck, Singular: "check", Plural: "checks", Short: []string{"chk"}, New: func() Object { return &Check{TypeMeta: typeMeta(KindCheck)} }},
	{Kind: KindModule, Singular: "module", Plural: "modules", Short: []string{"mod"}, New: func() Object { return &Module{TypeMeta: typeMeta(KindModule)} }},
	{Kind: KindPiNode, Singular: "pinode", Plural: "pinodes", Short: []string{"pi"}, New: func() Object { return &PiNode{TypeMeta: typeMeta(KindPiNode)} }},
	{Kind: KindAlertRoute, Singular: "alertroute", Plural: "alertroutes", Short: []string{"ar"}, New: func() Object { return &AlertRoute{TypeMeta: typeMeta(KindAlertRoute)} }},
	{Kind: KindHost, Singular: "host", Plural: "hosts", New: func() Object { return &Host{TypeMeta: typeMeta(KindHost)} }},
}

func typeMeta(kind string) TypeMeta { return TypeMeta{APIVersion: APIVersion, Kind: kind} }

// LookupKind finds a kind by its CamelCase name, singular, plural or short
// name, ignoring case. The second result is false for an unknown name.
func LookupKind(s string) (KindInfo, bool) {
	l := strings.ToLower(s)
	for _, k := range Kinds {
		if l == strings.ToLower(k.Kind) || l == k.Singular || l == k.Plural {
			return k, true
		}
		for _, sh := range k.Short {
			if l == sh {
				return k, true
			}
		}
	}
	return KindInfo{}, false
}

// KindNames returns the CamelCase names of all kinds, sorted.
func KindNames() []string {
	names := make([]string, 0, len(Kinds))
	for _, k := range Kinds {
		names = append(names, k.Kind)
	}
	sort.Strings(names)
	return names
}
