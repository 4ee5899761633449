// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// Command-line mistakes are usage errors (exit 2) before any request.
func TestRestartUsage(t *testing.T) {
	for _, args := range []string{
		"restart",
		"restart link/a2rtr",
		"restart modules",
		"restart modules a --all",
		"restart modules --all -l site=ark",
		"restart modules -l 'a in'",
		"restart process --switch-port 7",
		"restart pinode/pi7 --switch-port 7",
		"restart pinode --switch 10.0.0.2",
		"restart pinode,module --all",
	} {
		var out, errOut bytes.Buffer
		code := run(append(strings.Fields(args), "--socket", "/nonexistent/reconciled.sock"), &out, &errOut)
		if code != 2 {
			t.Errorf("%q: exit %d (%s), want 2", args, code, errOut.String())
		}
	}
}

func TestOnSwitchPort(t *testing.T) {
	pi := func(name, sw string, port int) v1alpha1.Object {
		return &v1alpha1.PiNode{ObjectMeta: v1alpha1.ObjectMeta{Name: name}, Spec: v1alpha1.PiNodeSpec{Switch: v1alpha1.SwitchPort{Address: sw, Port: port}}}
	}
	objs := []v1alpha1.Object{pi("a7", "10.0.0.2:161", 7), pi("a8", "10.0.0.2:161", 8), pi("b7", "10.0.0.3:1161", 7)}
	names := func(os []v1alpha1.Object) string {
		var n []string
		for _, o := range os {
			n = append(n, o.GetObjectMeta().Name)
		}
		return strings.Join(n, ",")
	}
	for _, tc := range []struct {
		port      int
		addr      string
		want, err string
	}{
		{8, "", "a8", ""},
		{7, "10.0.0.2", "a7", ""},
		{7, "10.0.0.3:1161", "b7", ""},
		{7, "", "", "several switches (10.0.0.2:161, 10.0.0.3:1161)"},
		{9, "", "", "no pinode on switch port 9"},
		{8, "10.0.0.3", "", "no pinode on port 8 of switch 10.0.0.3"},
	} {
		got, err := onSwitchPort(objs, tc.port, tc.addr)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("port %d %q: %v, want %q", tc.port, tc.addr, err, tc.err)
			}
			continue
		}
		if err != nil || names(got) != tc.want {
			t.Errorf("port %d %q: %s %v, want %s", tc.port, tc.addr, names(got), err, tc.want)
		}
	}
	var ue usageError
	if _, err := onSwitchPort(objs, 7, ""); !errors.As(err, &ue) {
		t.Errorf("several switches is not a usage error: %v", err)
	}
}
