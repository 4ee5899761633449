// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTargets(t *testing.T) {
	for args, want := range map[string]string{
		"processes":               "Process:*",
		"proc a b":                "Process:a,b",
		"process/a link/b proc/c": "Process:a,c Link:b",
		"process,links":           "Process:* Link:*",
		"all":                     "Process:* Link:* Check:* Module:* PiNode:* AlertRoute:* Host:*",
	} {
		ts, err := parseTargets(strings.Fields(args))
		if err != nil {
			t.Errorf("%q: %v", args, err)
			continue
		}
		var got []string
		for _, tg := range ts {
			names := strings.Join(tg.names, ",")
			if names == "" {
				names = "*"
			}
			got = append(got, tg.ki.Kind+":"+names)
		}
		if g := strings.Join(got, " "); g != want {
			t.Errorf("%q = %s, want %s", args, g, want)
		}
	}
	for _, args := range []string{"", "bogus", "process/a b", "all x", "process,link a", "process/"} {
		var ue usageError
		if _, err := parseTargets(strings.Fields(args)); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}
