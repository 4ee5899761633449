// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/reconciled/reconciled/resources"
)

// This file holds the actions of the kinds driven through other systems
// (systemd for Modules, the netboot servers for PiNodes).

// moduleRestart serves POST .../modules/{name}/restart.
func (s *Server) moduleRestart(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if s.opts.Modules == nil {
		writeError(w, http.StatusNotFound, "NotFound", "this daemon does not manage modules")
		return
	}
	if err := s.opts.Modules.RequestRestart(name); err != nil {
		if errors.Is(err, resources.ErrNotFound) {
			writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("module %q not found", name))
			return
		}
		writeError(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"kind": "Status", "status": "Success", "message": fmt.Sprintf("module %q restart requested", name)})
}

// moduleLog serves GET .../modules/{name}/log?tail=N: the unit's journal
// as text (journalctl -u UNIT -n N).
func (s *Server) moduleLog(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if s.opts.Modules == nil {
		writeError(w, http.StatusNotFound, "NotFound", "this daemon does not manage modules")
		return
	}
	n := 100
	if t := r.URL.Query().Get("tail"); t != "" {
		v, err := strconv.Atoi(t)
		if err != nil {
			writeError(w, http.StatusBadRequest, "BadRequest", "tail: "+err.Error())
			return
		}
		if v >= 0 {
			n = v
		}
	}
	lines, err := s.opts.Modules.Journal(r.Context(), name, n)
	if err != nil {
		if errors.Is(err, resources.ErrNotFound) {
			writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("module %q not found", name))
			return
		}
		writeError(w, http.StatusBadGateway, "JournalUnavailable", err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(lines) > 0 {
		fmt.Fprintln(w, strings.Join(lines, "\n"))
	}
}

// reinstall serves POST .../pinodes/{name}/reinstall.
func (s *Server) reinstall(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if s.opts.PiNodes == nil {
		writeError(w, http.StatusNotFound, "NotFound", "this daemon does not manage PiNodes")
		return
	}
	if err := s.opts.PiNodes.RequestReinstall(name); err != nil {
		if errors.Is(err, resources.ErrNotFound) {
			writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("pinode %q not found", name))
			return
		}
		writeError(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"kind": "Status", "status": "Success", "message": fmt.Sprintf("pinode %q reinstall requested", name)})
}

// unknownNodes serves GET .../unknownnodes: MACs that asked for netboot
// without a PiNode (reconcilectl get pinodes --unknown).
func (s *Server) unknownNodes(w http.ResponseWriter, _ *http.Request) {
	var items any = []struct{}{}
	if s.opts.PiNodes != nil {
		items = s.opts.PiNodes.UnknownNodes()
	}
	writeJSON(w, http.StatusOK, map[string]any{"kind": "UnknownNodeList", "items": items})
}
