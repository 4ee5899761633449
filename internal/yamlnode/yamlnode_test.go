// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package yamlnode

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestNodes(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(`{"kind": "Process", "metadata": {"name": "a", "generation": 3}, "spec": {"n": "100", "s": "a\nb"}}`), &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	if Scalar(Get(root, "kind")) != "Process" || Scalar(Get(Get(root, "metadata"), "name")) != "a" {
		t.Fatal("Get/Scalar")
	}
	if Get(nil, "x") != nil || Get(Get(root, "kind"), "x") != nil || Scalar(Get(root, "metadata")) != "" {
		t.Fatal("Get of a non-mapping or Scalar of a mapping")
	}
	Delete(Get(root, "metadata"), "generation")
	Delete(root, "missing")
	Plain(root)
	b, _ := yaml.Marshal(&doc)
	out := string(b)
	for _, want := range []string{"kind: Process\n", "  name: a\n", `n: "100"`, `s: "a\nb"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "generation") || strings.Contains(out, "{") {
		t.Errorf("generation kept or flow style left:\n%s", out)
	}
}
