// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"k8s.io/client-go/util/jsonpath"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// newJSONPath parses a kubectl-style JSONPath template; like kubectl, a
// bare expression (.metadata.name) gets its braces added.
func newJSONPath(tmpl string) (*jsonpath.JSONPath, error) {
	t := strings.TrimSpace(tmpl)
	if t == "" {
		return nil, fmt.Errorf("empty JSONPath template")
	}
	if !strings.Contains(t, "{") {
		if !strings.HasPrefix(t, ".") {
			t = "." + t
		}
		t = "{" + t + "}"
	}
	jp := jsonpath.New("out").AllowMissingKeys(true)
	if err := jp.Parse(t); err != nil {
		return nil, err
	}
	return jp, nil
}

// generic turns typed objects into the maps JSONPath walks.
func generic(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	return out, json.Unmarshal(b, &out)
}

// sortObjects sorts objs by the value of a JSONPath field: numbers
// numerically, everything else as text; objects without the field last.
func sortObjects(objs []v1alpha1.Object, field string) error {
	jp, err := newJSONPath(field)
	if err != nil {
		return err
	}
	keys := make([]string, len(objs))
	for i, o := range objs {
		data, err := generic(o)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := jp.Execute(&b, data); err != nil {
			return fmt.Errorf("--sort-by %s: %w", field, err)
		}
		keys[i] = b.String()
	}
	if len(objs) > 0 && !slices.ContainsFunc(keys, func(k string) bool { return k != "" }) {
		// Like kubectl: a path no object has is a mistake, not an order.
		return usagef("couldn't find any field with path %q in the list of objects (see reconcilectl get KIND -o yaml for the fields)", field)
	}
	idx := make([]int, len(objs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ka, kb := keys[idx[a]], keys[idx[b]]
		if ka == "" || kb == "" {
			return kb == "" && ka != ""
		}
		fa, ea := strconv.ParseFloat(ka, 64)
		fb, eb := strconv.ParseFloat(kb, 64)
		if ea == nil && eb == nil {
			return fa < fb
		}
		return ka < kb
	})
	sorted := make([]v1alpha1.Object, len(objs))
	for i, j := range idx {
		sorted[i] = objs[j]
	}
	copy(objs, sorted)
	return nil
}
