// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"context"
	"time"
)

// Source is where resource documents come from, as the kubelet has file,
// http and apiserver sources of pods. The store reads a source by origin:
// an origin is what the source changes as one piece (a file below --dir; a
// file of a git commit; an object of a Kubernetes API) and its name is
// what errors and the reconciled.dev/source annotation show. The store
// does the rest the same for every source: decoding, validation, duplicate
// names, the grace before a vanished resource is deleted, and keeping the
// last good version of a resource whose origin has become invalid.
//
// A source that cannot reach what it reads from (a git remote that is
// down) keeps serving the origins it had: only an origin that the source
// positively no longer has is gone (Read ok=false), so an outage never
// deletes anything.
type Source interface {
	// Name names the source in logs and health messages ("/etc/reconciled").
	Name() string
	// List returns every origin the source holds now, and the source's
	// own problems that belong to no origin (a symlinked folder that is
	// not followed). An error means the source cannot be listed at all:
	// nothing is deleted for it.
	List() (origins []string, problems []Problem, err error)
	// Read returns an origin's content. ok=false means the origin is gone.
	// An error means it is there but refused (unreadable, untrusted, too
	// large): the store reports it on the origin's resources and keeps
	// their last good version.
	Read(origin string) (data []byte, ok bool, err error)
	// Watch calls changed for each origin that may have changed, and
	// relist when the source may have lost track of changes (everything
	// is listed and read again), until ctx is done. It calls relist once
	// it is watching, for the changes between List and then. changed may be called
	// for origins that did not change; reading them again is cheap (their
	// content hash is compared). Watch returns an error only when it
	// cannot watch at all.
	Watch(ctx context.Context, changed func(origin string), relist func()) error
}

// Revisioner is a Source whose origins are read from a versioned whole (a
// git commit). The revision a document was read at prefixes its
// reconciled.dev/source annotation (commit:path:line).
type Revisioner interface {
	// Revision returns the version an origin is read at now.
	Revision(origin string) string
}

// SourceStatus is what `reconcilectl get sources` shows of a source.
type SourceStatus struct {
	// Name names the source (sources: in --config; "dir" and "git" for
	// the flags).
	Name string `json:"name"`
	// Type is dir or git.
	Type string `json:"type"`
	// URL is the folder or the repository.
	URL    string `json:"url"`
	Branch string `json:"branch,omitempty"`
	// Commit is the applied revision of a versioned source.
	Commit string `json:"commit,omitempty"`
	// Fetched is when a remote source last answered.
	Fetched *time.Time `json:"fetched,omitempty"`
	// Ready is false while the source cannot be read (what it last gave
	// keeps running).
	Ready   bool   `json:"ready"`
	Message string `json:"message,omitempty"`
}
