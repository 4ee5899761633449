// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package kubeagent

import (
	"strings"
	"testing"

	"github.com/go-logr/logr/testr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources"
)

func object(ns, name string, labels, annotations map[string]string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": v1alpha1.APIVersion, "kind": "Process", "spec": spec,
		"status": map[string]any{"phase": "Running"}}}
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetLabels(labels)
	u.SetAnnotations(annotations)
	u.SetUID(types.UID("uid-" + name))
	u.SetGeneration(3)
	return u
}

// The checkpoint holds what the informers said, as resource documents the
// store decodes; a status-only change writes and tells nothing; a delete
// removes the file; List and Read serve the files.
func TestSourceCheckpoint(t *testing.T) {
	dir := t.TempDir()
	s, err := NewSource(SourceOptions{Host: "web1", Dir: dir, Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	proc, _ := v1alpha1.LookupKind("process")
	var changed []string
	note := func(o string) { changed = append(changed, o) }
	obj := object("host-web1", "nginx", map[string]string{v1alpha1.LabelHost: "web1"},
		map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}", "team": "ops"},
		map[string]any{"command": []any{"/bin/sleep", "100"}})
	s.put(proc, obj, note)
	if len(changed) != 1 || changed[0] != "host-web1/processes/nginx" {
		t.Fatalf("changed: %v", changed)
	}
	list, _, err := s.List()
	if err != nil || len(list) != 1 || list[0] != "host-web1/processes/nginx" {
		t.Fatalf("List: %v %v", list, err)
	}
	data, ok, err := s.Read(list[0])
	if !ok || err != nil || strings.Contains(string(data), "last-applied") || strings.Contains(string(data), "Running") || !strings.Contains(string(data), "team: ops") {
		t.Fatalf("Read: %v %v\n%s", ok, err, data)
	}
	docs, err := resources.DecodeFile("x.yaml", data)
	if err != nil || len(docs) != 1 || docs[0].Err() != nil || docs[0].Object.GetObjectMeta().Name != "nginx" {
		t.Fatalf("the checkpoint does not decode: %v %+v", err, docs)
	}
	if ref, ok := s.Ref("host-web1/processes/nginx"); !ok || ref.UID != "uid-nginx" || ref.Generation != 3 || ref.Namespace != "host-web1" {
		t.Fatalf("Ref: %+v %v", ref, ok)
	}
	// A status change (the agent's own write coming back) changes nothing.
	obj.Object["status"] = map[string]any{"phase": "Failed"}
	s.put(proc, obj, note)
	if len(changed) != 1 {
		t.Fatalf("a status change was passed on: %v", changed)
	}
	// A reopened source (a restart) serves the checkpoint.
	again, _ := NewSource(SourceOptions{Host: "web1", Dir: dir, Log: testr.New(t)})
	if l, _, _ := again.List(); len(l) != 1 {
		t.Fatalf("after a restart: %v", l)
	}
	s.remove(proc, cache.DeletedFinalStateUnknown{Key: "host-web1/nginx", Obj: obj}, note)
	if _, ok, _ := s.Read("host-web1/processes/nginx"); ok || len(changed) != 2 {
		t.Fatalf("after the delete: %v %v", ok, changed)
	}
	if _, ok := s.Ref("host-web1/processes/nginx"); ok {
		t.Fatal("the ref outlived the object")
	}
}

func TestOriginOf(t *testing.T) {
	for src, want := range map[string]string{
		"kube:host-a/processes/web:3": "host-a/processes/web",
		"kube:host-a/processes/web":   "host-a/processes/web",
		"/etc/reconciled/web.yaml:3":  "",
		"kube:bad:3":                  "",
	} {
		p := &v1alpha1.Process{}
		p.Annotations = map[string]string{resources.AnnotationSource: src}
		got, ok := originOf(p)
		if (want == "") == ok || (ok && got != want) {
			t.Errorf("originOf(%q) = %q, %v; want %q", src, got, ok, want)
		}
	}
}

// A template's copy: named for the host, in the namespace the host reads,
// labelled for it, without the selector; owned only in the same namespace.
func TestCopyOf(t *testing.T) {
	tmpl := object("fleet", "web", map[string]string{"app": "web"},
		map[string]string{v1alpha1.AnnotationHosts: "role=web", "team": "ops"}, map[string]any{"command": []any{"/bin/true"}})
	host := &unstructured.Unstructured{Object: map[string]any{"apiVersion": v1alpha1.APIVersion, "kind": "Host", "status": map[string]any{"namespace": "host-a"}}}
	host.SetName("a")
	c := copyOf(tmpl, host)
	if c.GetName() != "web-a" || c.GetNamespace() != "host-a" || c.GetLabels()[v1alpha1.LabelHost] != "a" ||
		c.GetLabels()[v1alpha1.LabelTemplate] != "uid-web" || c.GetLabels()["app"] != "web" {
		t.Fatalf("copy: %v", c.Object)
	}
	if _, ok := c.GetAnnotations()[v1alpha1.AnnotationHosts]; ok || c.GetAnnotations()["team"] != "ops" {
		t.Fatalf("copy annotations: %v", c.GetAnnotations())
	}
	if len(c.GetOwnerReferences()) != 0 {
		t.Fatal("an owner reference across namespaces")
	}
	if _, ok := c.Object["status"]; ok {
		t.Fatal("the copy carries the template's status")
	}
	unstructured.RemoveNestedField(host.Object, "status")
	same := copyOf(tmpl, host)
	if same.GetNamespace() != "fleet" || len(same.GetOwnerReferences()) != 1 || same.GetOwnerReferences()[0].UID != "uid-web" {
		t.Fatalf("copy in the template's namespace: %v", same.Object)
	}
	if !sameCopy(same, copyOf(tmpl, host)) {
		t.Fatal("sameCopy of equal copies")
	}
	changed := tmpl.DeepCopy()
	changed.Object["spec"] = map[string]any{"command": []any{"/bin/false"}}
	if sameCopy(same, copyOf(changed, host)) {
		t.Fatal("sameCopy missed a spec change")
	}
}
