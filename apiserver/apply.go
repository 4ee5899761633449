// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"

	"github.com/reconciled/reconciled/resources/apply"
)

// apply serves PUT .../{plural}/{name}: create or replace the resource with
// the YAML or JSON document in the body.
func (s *Server) apply(w http.ResponseWriter, r *http.Request) {
	ki, ok := s.writable(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	res, dry, ok := s.write(w, r, ki, name, body)
	if !ok {
		return
	}
	code := http.StatusOK
	if res == apply.Created {
		code = http.StatusCreated
	}
	s.opts.Log.Info("resource applied through the API", "kind", ki.Kind, "name", name, "result", res, "dryRun", dry != nil)
	writeJSON(w, code, map[string]any{"kind": "Status", "status": "Success", "reason": string(res),
		"message": fmt.Sprintf("%s/%s %s", ki.Singular, name, res),
		"details": StatusDetails{Kind: ki.Kind, Name: name}, "file": s.opts.Writer.Path(ki.Kind, name)})
}

// delete serves DELETE .../{plural}/{name} for resources applied through
// the API.
func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	ki, ok := s.writable(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	opts, ok := deleteOptionsOf(w, r)
	if !ok {
		return
	}
	dryRun, ok := dryRunOf(w, r, opts.DryRun...)
	if !ok {
		return
	}
	if p := opts.Preconditions; p != nil && p.ResourceVersion != nil {
		if o, ok := s.opts.Store.View(ki.Kind, name); ok && o.GetObjectMeta().ResourceVersion != *p.ResourceVersion {
			writeStale(w, ki, name, *p.ResourceVersion, o.GetObjectMeta().ResourceVersion)
			return
		}
	}
	del := s.opts.Writer.Delete
	if dryRun {
		del = s.opts.Writer.DryRunDelete
	}
	res, err := del(ki.Kind, name)
	if err != nil {
		s.writeApplyError(w, err)
		return
	}
	s.opts.Log.Info("resource deleted through the API", "kind", ki.Kind, "name", name, "dryRun", dryRun)
	writeJSON(w, http.StatusOK, map[string]any{"kind": "Status", "status": "Success", "reason": string(res),
		"message": fmt.Sprintf("%s/%s %s", ki.Singular, name, res), "details": StatusDetails{Kind: ki.Kind, Name: name}})
}

// writable resolves {plural} for a write, or answers the request: an
// unknown kind, or a daemon without a writer.
func (s *Server) writable(w http.ResponseWriter, r *http.Request) (v1alpha1.KindInfo, bool) {
	ki, ok := kindOf(w, r)
	if !ok {
		return ki, false
	}
	if s.opts.Writer == nil {
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "this daemon does not accept resources through its API")
		return ki, false
	}
	return ki, true
}

// writeApplyError maps the writer's errors to Kubernetes-style statuses.
func (s *Server) writeApplyError(w http.ResponseWriter, err error) {
	var (
		invalid  *apply.InvalidError
		bad      *apply.BadRequestError
		conflict *apply.ConflictError
	)
	switch {
	case errors.As(err, &invalid):
		d := &StatusDetails{Kind: invalid.Kind, Name: invalid.Name}
		for _, c := range invalid.Causes {
			d.Causes = append(d.Causes, StatusCause{Field: c.Field, Message: c.Message, Line: c.Line})
		}
		code := http.StatusUnprocessableEntity
		writeJSON(w, code, StatusError{Kind: "Status", APIVersion: "v1", Status: "Failure", Reason: "Invalid", Message: err.Error(), Code: code, Details: d})
	case errors.As(err, &bad):
		writeError(w, http.StatusBadRequest, "BadRequest", err.Error())
	case errors.As(err, &conflict):
		writeError(w, http.StatusConflict, "Conflict", err.Error())
	case errors.Is(err, apply.ErrNotFound):
		writeError(w, http.StatusNotFound, "NotFound", err.Error())
	default:
		s.opts.Log.Error(err, "apply through the API failed")
		writeError(w, http.StatusInternalServerError, "InternalError", err.Error())
	}
}

// readBody reads a resource sent for writing (at most apply.MaxBody and
// a byte, so the writer can say it is too large); false when the answer
// is written.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, apply.MaxBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", "read body: "+err.Error())
		return nil, false
	}
	return body, true
}

// deleteOptionsOf reads the DeleteOptions a client may send with a
// DELETE (client-go puts dryRun and preconditions there, not in the
// query); an empty body is no options.
func deleteOptionsOf(w http.ResponseWriter, r *http.Request) (metav1.DeleteOptions, bool) {
	var opts metav1.DeleteOptions
	body, ok := readBody(w, r)
	if !ok || len(bytes.TrimSpace(body)) == 0 {
		return opts, ok
	}
	if err := json.Unmarshal(body, &opts); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", "DeleteOptions: "+err.Error())
		return opts, false
	}
	return opts, true
}

// writeStale answers a write made from resourceVersion rv of a resource
// now at version now, as a cluster does (kubectl says to get it again).
func writeStale(w http.ResponseWriter, ki v1alpha1.KindInfo, name, rv, now string) {
	writeError(w, http.StatusConflict, "Conflict", fmt.Sprintf("Operation cannot be fulfilled on %s %q: the object has been modified (resourceVersion %s, now %s); get the latest version and try again",
		ki.Plural, name, rv, now))
}
