// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apiserver

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"sigs.k8s.io/yaml"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources"
	"github.com/reconciled/reconciled/resources/apply"
)

// The writes kubectl makes, through the same writer as PUT (files under
// <dir>/api/, 409 for resources from other files or git): POST creates
// (kubectl create, apply of a new resource), PATCH changes (kubectl apply,
// edit, patch, label, annotate). Both answer with the object, as a cluster
// does; a patch carrying a stale metadata.resourceVersion is a Conflict.

// create serves POST .../{plural}.
func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	ki, ok := s.writable(w, r)
	if !ok {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var head struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(body, &head); err != nil || head.Metadata.Name == "" {
		writeError(w, http.StatusBadRequest, "BadRequest", "the body needs metadata.name")
		return
	}
	name := head.Metadata.Name
	if s.opts.Store.Known(ki.Kind, name) {
		writeError(w, http.StatusConflict, "AlreadyExists", fmt.Sprintf("%s %q already exists", ki.Singular, name))
		return
	}
	if _, dry, ok := s.write(w, r, ki, name, body); ok {
		s.opts.Log.Info("resource created through the API", "kind", ki.Kind, "name", name, "dryRun", dry != nil)
		s.writeObject(w, r, ki, name, dry, http.StatusCreated)
	}
}

// write applies body to kind/name through the writer, or with
// ?dryRun=All checks it as the writer would and returns the object it
// would become (dry); ok is false when it answered the request with an
// error.
func (s *Server) write(w http.ResponseWriter, r *http.Request, ki v1alpha1.KindInfo, name string, body []byte) (res apply.Result, dry v1alpha1.Object, ok bool) {
	dryRun, ok := dryRunOf(w, r)
	if !ok {
		return "", nil, false
	}
	var err error
	if dryRun {
		res, dry, err = s.opts.Writer.DryRun(ki.Kind, name, body)
	} else {
		res, err = s.opts.Writer.Apply(ki.Kind, name, body)
	}
	if err != nil {
		s.writeApplyError(w, err)
		return "", nil, false
	}
	return res, dry, true
}

// dryRunOf reads ?dryRun (and the dryRun of a DELETE's options, extra):
// "All" (the one value Kubernetes knows) or nothing; it answers any other
// value with 400.
func dryRunOf(w http.ResponseWriter, r *http.Request, extra ...string) (dryRun, ok bool) {
	for _, v := range append(r.URL.Query()["dryRun"], extra...) {
		if v != "All" {
			writeError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("invalid dryRun %q: the only value is All", v))
			return false, false
		}
		dryRun = true
	}
	return dryRun, true
}

// patch serves PATCH .../{plural}/{name}: a JSON merge patch, a JSON
// patch, or an apply patch (server-side apply, merged as a merge patch)
// of the resource as its file holds it (metadata and spec).
func (s *Server) patch(w http.ResponseWriter, r *http.Request) {
	ki, ok := s.writable(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	current, ok := s.opts.Store.View(ki.Kind, name)
	if !ok {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("%s %q not found", ki.Singular, name))
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	doc, err := fileDocument(current)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var patched []byte
	switch ct {
	case "application/merge-patch+json":
		patched, err = jsonpatch.MergePatch(doc, body)
	case "application/json-patch+json":
		var p jsonpatch.Patch
		if p, err = jsonpatch.DecodePatch(body); err == nil {
			patched, err = p.Apply(doc)
		}
	case "application/apply-patch+yaml":
		var j []byte
		if j, err = yaml.YAMLToJSON(body); err == nil {
			patched, err = jsonpatch.MergePatch(doc, j)
		}
	default:
		writeError(w, http.StatusUnsupportedMediaType, "UnsupportedMediaType",
			fmt.Sprintf("patch type %q: use merge (application/merge-patch+json), json (application/json-patch+json) or apply", ct))
		return
	}
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "Invalid", "the patch does not apply: "+err.Error())
		return
	}
	var meta struct {
		Metadata struct {
			Name            string `json:"name"`
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(patched, &meta); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "Invalid", err.Error())
		return
	}
	if rv := meta.Metadata.ResourceVersion; rv != "" && rv != current.GetObjectMeta().ResourceVersion {
		writeStale(w, ki, name, rv, current.GetObjectMeta().ResourceVersion)
		return
	}
	if meta.Metadata.Name != name {
		writeError(w, http.StatusBadRequest, "BadRequest", "a patch cannot rename a resource")
		return
	}
	if _, dry, ok := s.write(w, r, ki, name, patched); ok {
		s.opts.Log.Info("resource patched through the API", "kind", ki.Kind, "name", name, "type", ct, "dryRun", dry != nil)
		s.writeObject(w, r, ki, name, dry, http.StatusOK)
	}
}

// fileDocument is a resource as a file holds it: apiVersion, kind,
// metadata the user writes (name, labels, annotations but the source
// one) and spec.
func fileDocument(o v1alpha1.Object) ([]byte, error) {
	m := o.GetObjectMeta()
	ann := map[string]string{}
	for k, v := range m.Annotations {
		if k != resources.AnnotationSource {
			ann[k] = v
		}
	}
	meta := map[string]any{"name": m.Name, "resourceVersion": m.ResourceVersion}
	if len(m.Labels) > 0 {
		meta["labels"] = m.Labels
	}
	if len(ann) > 0 {
		meta["annotations"] = ann
	}
	return json.Marshal(map[string]any{"apiVersion": v1alpha1.APIVersion, "kind": o.GetTypeMeta().Kind, "metadata": meta, "spec": o.GetSpec()})
}

// writeObject answers with the resource as the store now holds it, or
// with dry, the object a dry run would have made.
func (s *Server) writeObject(w http.ResponseWriter, r *http.Request, ki v1alpha1.KindInfo, name string, dry v1alpha1.Object, code int) {
	if dry != nil {
		writeJSON(w, code, s.view(r, dry))
		return
	}
	o, ok := s.opts.Store.View(ki.Kind, name)
	if !ok {
		writeError(w, http.StatusInternalServerError, "InternalError", fmt.Sprintf("%s %q was written but is not in the store", ki.Singular, name))
		return
	}
	writeJSON(w, code, s.view(r, o))
}
