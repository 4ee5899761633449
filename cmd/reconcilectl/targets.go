// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"strings"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// target is one kind and the names asked for; no names means every
// resource of the kind.
type target struct {
	ki    v1alpha1.KindInfo
	names []string
}

// parseTargets reads the ways kubectl names resources:
//
//	KIND | KIND,KIND | all     every resource of those kinds
//	KIND NAME...               named resources of one kind
//	KIND/NAME...               named resources, of any kinds
//
// Kinds may be singular, plural or short. Targets of one kind are merged,
// in the order given.
func parseTargets(args []string) ([]target, error) {
	if len(args) == 0 {
		return nil, usagef("you must specify the type of resource (%s, or all)", strings.Join(kindChoices(), ", "))
	}
	var out []target
	add := func(ki v1alpha1.KindInfo, names ...string) {
		for i := range out {
			if out[i].ki.Kind == ki.Kind {
				out[i].names = append(out[i].names, names...)
				return
			}
		}
		out = append(out, target{ki: ki, names: names})
	}
	if strings.Contains(args[0], "/") {
		for _, a := range args {
			kind, name, ok := strings.Cut(a, "/")
			if !ok {
				return nil, usagef("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (got %q)", a)
			}
			ki, err := lookupKindArg(kind)
			if err != nil {
				return nil, err
			}
			if name == "" {
				return nil, usagef("a name is required: %s/NAME", ki.Singular)
			}
			add(ki, name)
		}
		return out, nil
	}
	if args[0] == "all" {
		if len(args) > 1 {
			return nil, usagef("names cannot be used with all")
		}
		for _, ki := range v1alpha1.Kinds {
			add(ki)
		}
		return out, nil
	}
	kinds := strings.Split(args[0], ",")
	if len(kinds) > 1 && len(args) > 1 {
		return nil, usagef("names go with one kind: use KIND/NAME to name resources of several kinds")
	}
	for _, k := range kinds {
		ki, err := lookupKindArg(k)
		if err != nil {
			return nil, err
		}
		add(ki, args[1:]...)
	}
	return out, nil
}

// lookupKindArg resolves a kind as typed on the command line.
func lookupKindArg(kind string) (v1alpha1.KindInfo, error) {
	ki, ok := v1alpha1.LookupKind(kind)
	if !ok {
		return ki, usagef("the server doesn't have a resource type %q (want one of %s, or all)", kind, strings.Join(kindChoices(), ", "))
	}
	return ki, nil
}
