// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/reconciled/reconciled/resources"
)

// This file holds the actions of the kinds driven through other systems
// (systemd for Modules, the netboot servers for PiNodes).

// action serves POST .../{plural}/{name}/{verb}: do asks the controller
// of kind (nil when the daemon has none) for the action, which happens
// after the answer (202 Accepted).
func action(singular, verb string, do func(name string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if do == nil {
			writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("this daemon does not manage %ss", singular))
			return
		}
		if err := do(name); err != nil {
			switch {
			case errors.Is(err, resources.ErrNotFound):
				writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("%s %q not found", singular, name))
			case errors.Is(err, resources.ErrConflict):
				writeError(w, http.StatusConflict, "Conflict", strings.TrimSuffix(err.Error(), ": "+resources.ErrConflict.Error()))
			default:
				writeError(w, http.StatusInternalServerError, "InternalError", err.Error())
			}
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"kind": "Status", "status": "Success", "message": fmt.Sprintf("%s %q %s requested", singular, name, verb)})
	}
}

// defaultRestartAllTimeout and maxRestartAllTimeout bound the wait of
// POST .../modules/restart.
const (
	defaultRestartAllTimeout = time.Minute
	maxRestartAllTimeout     = 10 * time.Minute
)

// restartModules serves POST .../modules/restart?labelSelector=S&timeout=D:
// every Module S matches (all without S) is restarted, and the answer, once
// each has an outcome or the timeout (default 1m) passed, is a
// v1alpha1.RestartReport (reconcilectl restart modules --all).
func (s *Server) restartModules(w http.ResponseWriter, r *http.Request) {
	if s.opts.Modules == nil {
		writeError(w, http.StatusNotFound, "NotFound", "this daemon does not manage modules")
		return
	}
	sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", "labelSelector: "+err.Error())
		return
	}
	timeout := defaultRestartAllTimeout
	if t := r.URL.Query().Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 || d > maxRestartAllTimeout {
			writeError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("timeout %q: want a duration such as 30s, at most %s", t, maxRestartAllTimeout))
			return
		}
		timeout = d
	}
	writeJSON(w, http.StatusOK, s.opts.Modules.RestartAll(r.Context(), sel, timeout))
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

// unknownNodes serves GET .../unknownnodes: MACs that asked for netboot
// without a PiNode (reconcilectl get pinodes --unknown).
func (s *Server) unknownNodes(w http.ResponseWriter, _ *http.Request) {
	var items any = []struct{}{}
	if s.opts.PiNodes != nil {
		items = s.opts.PiNodes.UnknownNodes()
	}
	writeJSON(w, http.StatusOK, map[string]any{"kind": "UnknownNodeList", "items": items})
}
