// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apiserver

import (
	"errors"
	"fmt"
	"io"
	"net/http"

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
	res, err := s.opts.Writer.Apply(ki.Kind, name, body)
	if err != nil {
		s.writeApplyError(w, err)
		return
	}
	code := http.StatusOK
	if res == apply.Created {
		code = http.StatusCreated
	}
	s.opts.Log.Info("resource applied through the API", "kind", ki.Kind, "name", name, "result", res)
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
	res, err := s.opts.Writer.Delete(ki.Kind, name)
	if err != nil {
		s.writeApplyError(w, err)
		return
	}
	s.opts.Log.Info("resource deleted through the API", "kind", ki.Kind, "name", name)
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
