// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

func procs(restarts ...int64) []v1alpha1.Object {
	var out []v1alpha1.Object
	for i, r := range restarts {
		p := &v1alpha1.Process{ObjectMeta: v1alpha1.ObjectMeta{Name: string(rune('a' + i))}}
		p.Kind, p.APIVersion = v1alpha1.KindProcess, v1alpha1.APIVersion
		p.Status.Restarts = r
		out = append(out, p)
	}
	return out
}

func TestJSONPathOutput(t *testing.T) {
	for _, tc := range []struct {
		tmpl   string
		single bool
		want   string
	}{
		{"{.items[*].metadata.name}", false, "a b c"},
		{"{range .items[*]}{.metadata.name}={.status.restarts}{\"\\n\"}{end}", false, "a=10\nb=2\nc=30\n"},
		{".metadata.name", true, "a"},
	} {
		var b bytes.Buffer
		objs := procs(10, 2, 30)
		if tc.single {
			objs = objs[:1]
		}
		if err := printObjects(&b, "jsonpath="+tc.tmpl, objs, tc.single); err != nil {
			t.Fatalf("%s: %v", tc.tmpl, err)
		}
		if got := b.String(); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.tmpl, got, tc.want)
		}
	}
	if _, err := newJSONPath("{.items[*"); err == nil {
		t.Error("a broken template parsed")
	}
}

func TestSortBy(t *testing.T) {
	objs := procs(10, 2, 30)
	if err := sortObjects(objs, ".status.restarts"); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetObjectMeta().Name)
	}
	if got := strings.Join(names, ","); got != "b,a,c" {
		t.Errorf("sorted numerically: %s, want b,a,c (2 < 10 < 30)", got)
	}
	if err := sortObjects(objs, "{.metadata.name}"); err != nil {
		t.Fatal(err)
	}
	if objs[0].GetObjectMeta().Name != "a" {
		t.Errorf("sorted by name: first %s", objs[0].GetObjectMeta().Name)
	}
}
