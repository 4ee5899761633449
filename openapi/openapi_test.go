// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package openapi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	protobuf "google.golang.org/protobuf/proto"
	"k8s.io/kube-openapi/pkg/util/proto"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// Every kind has a schema with its group-version-kind, described by the
// doc comments of its types; the document names every kind's paths.
func TestKinds(t *testing.T) {
	ks := Kinds()
	for _, k := range v1alpha1.Kinds {
		s := ks[k.Kind]
		if s == nil || len(s.GVK) != 1 || s.GVK[0].Kind != k.Kind || s.Description == "" {
			t.Fatalf("%s: %+v", k.Kind, s)
		}
		for _, p := range []string{"apiVersion", "kind", "metadata", "spec", "status"} {
			if s.Properties[p] == nil {
				t.Errorf("%s has no %s", k.Kind, p)
			}
		}
	}
	backoff := ks["Process"].Properties["spec"].Properties["backoff"]
	if !strings.Contains(backoff.Description, "delay between restarts") || backoff.Properties["initial"].Type != "string" ||
		!strings.Contains(backoff.Properties["initial"].Description, "default 100ms") {
		t.Fatalf("Process spec.backoff: %+v", backoff)
	}
	levels := ks["Check"].Properties["spec"].Properties["levels"]
	if levels.Type != "array" || levels.Items.Properties["above"].Type != "number" {
		t.Fatalf("Check spec.levels: %+v", levels)
	}
	if env := ks["Process"].Properties["spec"].Properties["env"]; env.Type != "object" || env.AdditionalProperties.Type != "string" {
		t.Fatalf("Process spec.env: %+v", env)
	}
	b, err := json.Marshal(Document())
	if err != nil || !strings.Contains(string(b), `"/apis/reconciled.dev/v1alpha1/checks/{name}"`) || !strings.Contains(string(b), `"fieldValidation"`) {
		t.Fatalf("document: %v %.300s", err, b)
	}
}

// deploy/crds holds what `reconcilectl crds --dir deploy/crds` writes now
// (make crds): a change to the types changes them.
func TestCRDsCurrent(t *testing.T) {
	for _, k := range v1alpha1.Kinds {
		want, err := CRDYAML(k)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("..", "deploy", "crds", k.Plural+"."+v1alpha1.Group+".yaml")
		got, err := os.ReadFile(path)
		if err != nil || string(got) != string(want) {
			t.Errorf("%s is not current (%v): run make crds", path, err)
		}
	}
}

// The v2 document, as the protocol buffer kubectl reads, gives kubectl's
// OpenAPI models every kind, with the field docs kubectl explain prints.
func TestV2(t *testing.T) {
	_, pb := V2()
	var doc openapiv2.Document
	if err := protobuf.Unmarshal(pb, &doc); err != nil {
		t.Fatal(err)
	}
	models, err := proto.NewOpenAPIData(&doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range v1alpha1.Kinds {
		if models.LookupModel(SchemaName(k.Kind)) == nil {
			t.Errorf("no model for %s", k.Kind)
		}
	}
	process, ok := models.LookupModel(SchemaName("Process")).(*proto.Kind)
	if !ok {
		t.Fatalf("Process is %T", models.LookupModel(SchemaName("Process")))
	}
	spec, ok := process.Fields["spec"].(*proto.Kind)
	if !ok {
		t.Fatalf("Process spec is %T", process.Fields["spec"])
	}
	backoff := spec.Fields["backoff"]
	if backoff == nil || !strings.Contains(backoff.GetDescription(), "delay between restarts") {
		t.Fatalf("Process spec.backoff: %+v", backoff)
	}
}
