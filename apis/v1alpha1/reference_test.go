// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// referenceDoc is the user reference checked by TestReferenceDocumentsEveryField.
const referenceDoc = "../../docs/reference.md"

// jsonPaths returns the JSON path of every field reachable from t, prefixed
// with prefix: intermediate objects as well as leaves. Structs, pointers,
// slices and maps are followed; a slice or map adds no path segment
// (spec.receivers.email.to). Inline embedded structs (CommonStatus) are
// expanded in place. Types from other packages (metav1.Duration, metav1.Time,
// metav1.Condition) are leaves.
func jsonPaths(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.PkgPath() != reflect.TypeFor[TypeMeta]().PkgPath() {
		return nil
	}
	var paths []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && (name == "" || strings.Contains(","+opts+",", ",inline,")) {
			paths = append(paths, jsonPaths(f.Type, prefix)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		p := prefix + "." + name
		paths = append(paths, p)
		paths = append(paths, jsonPaths(f.Type, p)...)
	}
	return paths
}

// docSections splits a markdown document at its "## " headings, keyed by
// the heading's first word.
func docSections(doc string) map[string]string {
	sections := map[string]string{}
	key := ""
	for _, part := range strings.SplitAfter(doc, "\n") {
		if h, ok := strings.CutPrefix(part, "## "); ok {
			key = strings.Fields(h + " _")[0]
		}
		sections[key] += part
	}
	return sections
}

// TestReferenceDocumentsEveryField checks that docs/reference.md documents
// every spec and status field of every kind. Convention: each field's full
// JSON path is written in backticks (`spec.readiness.http.url`) inside the
// "## <Kind>" section of that kind; slices and maps add no segment.
func TestReferenceDocumentsEveryField(t *testing.T) {
	b, err := os.ReadFile(referenceDoc)
	if err != nil {
		t.Fatal(err)
	}
	sections := docSections(string(b))
	kinds := []struct {
		kind         string
		spec, status any
	}{
		{"Process", ProcessSpec{}, ProcessStatus{}},
		{"Link", LinkSpec{}, LinkStatus{}},
		{"Check", CheckSpec{}, CheckStatus{}},
		{"Module", ModuleSpec{}, ModuleStatus{}},
		{"PiNode", PiNodeSpec{}, PiNodeStatus{}},
		{"AlertRoute", AlertRouteSpec{}, AlertRouteStatus{}},
		{"Host", HostSpec{}, HostStatus{}},
	}
	total := 0
	for _, k := range kinds {
		section, ok := sections[k.kind]
		if !ok {
			t.Errorf("%s: no \"## %s\" section", referenceDoc, k.kind)
			continue
		}
		paths := append(jsonPaths(reflect.TypeOf(k.spec), "spec"), jsonPaths(reflect.TypeOf(k.status), "status")...)
		for _, p := range paths {
			total++
			if !strings.Contains(section, "`"+p+"`") {
				t.Errorf("%s: %s field `%s` is not documented in its \"## %s\" section", referenceDoc, k.kind, p, k.kind)
			}
		}
	}
	if total < 100 {
		t.Errorf("only %d paths found; the type walk is broken", total)
	}
	t.Logf("checked %d field paths", total)
}
