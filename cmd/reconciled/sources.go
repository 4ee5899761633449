// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-logr/logr"

	config "github.com/reconciled/reconciled/apis/config/v1alpha1"
	"github.com/reconciled/reconciled/kubeagent"
	"github.com/reconciled/reconciled/resources"
	"github.com/reconciled/reconciled/resources/gitsource"
)

// daemonSources are where the daemon's resources come from: the sources:
// of --config plus --git and --dir, read by the store as one.
type daemonSources struct {
	settings []config.Source
	multi    *resources.MultiSource
	// dir is the folder source's path, "" without one.
	dir string
	// gits are the git sources by name.
	gits map[string]*gitsource.Source
	// kube is the Kubernetes API server's source (--kube), or nil.
	kube *kubeagent.Source
	// kubeServer is its URL.
	kubeServer string
}

// sourceSettings merges the sources: of --config with the flags: --git
// adds a source named "git"; --dir adds a folder when given explicitly or
// when nothing else is (the default ./resources). ${HOST} in git paths is
// the host's name.
func sourceSettings(f *flags, cfg *config.Config, host string) ([]config.Source, error) {
	list := append([]config.Source(nil), cfg.Sources...)
	names := map[string]bool{}
	for _, s := range list {
		names[s.Name] = true
	}
	if f.git != "" {
		if names["git"] {
			return nil, errors.New("--git: the config already has a source named git")
		}
		list = append(list, config.Source{Name: "git", Git: f.git, Branch: f.gitBranch, Paths: f.gitPaths, Interval: f.gitInterval.String(),
			AuthFile: f.gitAuthFile, Verify: f.gitVerify, WebhookSecretFile: f.gitWebhookSecretFile})
	} else if f.gitWebhookSecretFile != "" {
		return nil, errors.New("--git-webhook-secret-file needs --git")
	}
	if f.dirSet || (len(list) == 0 && f.kube == "") {
		if names["dir"] {
			return nil, errors.New("--dir: the config already has a source named dir")
		}
		list = append(list, config.Source{Name: "dir", Dir: f.dir})
	}
	dirs := 0
	for i := range list {
		if list[i].Dir != "" {
			if dirs++; dirs > 1 {
				return nil, fmt.Errorf("source %s: only one folder source is supported (the API writes to it)", list[i].Name)
			}
		}
		for j, p := range list[i].Paths {
			list[i].Paths[j] = strings.ReplaceAll(p, "${HOST}", host)
		}
	}
	return list, nil
}

// hasGit reports whether any source is a git repository.
func hasGit(list []config.Source) bool {
	for _, s := range list {
		if s.Git != "" {
			return true
		}
	}
	return false
}

// openSources opens every source. Git repositories are kept in
// <state-dir>/git/<name> (the first one in <state-dir>/git/repo), so a
// restart while a remote is unreachable runs the commit applied last.
func openSources(list []config.Source, kube *kubeAgent, stateDir string, allowInsecureFiles bool, log logr.Logger) (*daemonSources, error) {
	ds := &daemonSources{settings: list, gits: map[string]*gitsource.Source{}}
	var mounts []resources.Mount
	for _, s := range list {
		if s.Dir != "" {
			dir, err := filepath.Abs(s.Dir)
			if err != nil {
				return nil, err
			}
			ds.dir = dir
			mounts = append(mounts, resources.Mount{Source: resources.NewDirSource(dir, allowInsecureFiles, log.WithName("dir"))})
			continue
		}
		repo := filepath.Join(stateDir, "git", "repo")
		prefix := ""
		if len(ds.gits) > 0 {
			repo = filepath.Join(stateDir, "git", s.Name)
			prefix = s.Name + ":"
		}
		g, err := gitsource.New(gitsource.Options{Name: s.Name, URL: s.Git, Branch: s.Branch, Paths: s.Paths, Dir: repo, Interval: s.GitInterval(),
			AllowedSigners: s.Verify, AuthFile: s.AuthFile, Log: log.WithName("git").WithValues("source", s.Name)})
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s.Name, err)
		}
		ds.gits[s.Name] = g
		mounts = append(mounts, resources.Mount{Prefix: prefix, Source: g})
	}
	if kube != nil { // last: the mounts before it are the settings'
		ds.kube, ds.kubeServer = kube.source, kube.config.Host
		mounts = append(mounts, resources.Mount{Prefix: kubeagent.Prefix, Source: kube.source})
	}
	multi, err := resources.NewMultiSource(mounts...)
	if err != nil {
		return nil, err
	}
	ds.multi = multi
	return ds, nil
}

// status lists the sources for GET .../sources. The input problems of a
// source's files (an invalid file in the applied commit) make it not
// Ready, with file:line in its message: what they defined before keeps
// running.
func (ds *daemonSources) status(store *resources.Store) func() []resources.SourceStatus {
	return func() []resources.SourceStatus {
		problems := map[int][]resources.Problem{}
		for _, p := range store.AllProblems() {
			i := ds.multi.MountOf(p.File)
			problems[i] = append(problems[i], p)
		}
		out := make([]resources.SourceStatus, len(ds.settings))
		for i, s := range ds.settings {
			if g := ds.gits[s.Name]; g != nil {
				out[i] = g.Status()
			} else {
				out[i] = resources.SourceStatus{Type: "dir", URL: ds.dir, Ready: true, Message: "watched"}
			}
			out[i].Name = s.Name
			if ps := problems[i]; len(ps) > 0 {
				where, msg := ps[0].Locate()
				out[i].Ready = false
				out[i].Message = fmt.Sprintf("%d invalid input(s), first %s: %s; what they defined before keeps running", len(ps), where, msg)
			}
		}
		if ds.kube != nil {
			st := resources.SourceStatus{Name: "kube", Type: "kube", URL: ds.kubeServer, Ready: true, Message: "watched"}
			if synced, err := ds.kube.Status(); !synced || err != "" {
				st.Ready, st.Message = false, "running the last state seen (checkpoint)"
				if err != "" {
					st.Message += ": " + err
				}
			}
			out = append(out, st)
		}
		return out
	}
}

// hooks are POST /hooks/NAME of the git sources with a webhook secret.
func (ds *daemonSources) hooks() (map[string]http.Handler, error) {
	out := map[string]http.Handler{}
	for _, s := range ds.settings {
		if s.WebhookSecretFile == "" {
			continue
		}
		b, err := os.ReadFile(s.WebhookSecretFile)
		if err != nil {
			return nil, fmt.Errorf("source %s: webhook secret: %w", s.Name, err)
		}
		secret := bytes.TrimSpace(b)
		if len(secret) == 0 {
			return nil, fmt.Errorf("source %s: webhook secret %s is empty", s.Name, s.WebhookSecretFile)
		}
		out[s.Name] = ds.gits[s.Name].Webhook(secret)
	}
	return out, nil
}
