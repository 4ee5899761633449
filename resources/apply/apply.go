// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package apply writes resources into the watched directory on behalf of the
// API (`reconcilectl apply`, `reconcilectl delete`) and the MQTT bridge.
//
// The files stay the source of truth: a resource applied here becomes one
// file, <dir>/api/<kind>-<name>.yaml, and reaches the controllers through
// the same watch as a git commit. The writer owns that folder and nothing
// else: a resource defined in any other file is refused with a Conflict, so
// an API call never fights a git checkout (change it in git instead).
//
// Input is validated with the same decoder as files, so errors carry field
// paths. What a client sends back from `get -o yaml` works: status,
// metadata.generation, creationTimestamp and the reconciled.dev/source
// annotation are dropped before writing, and everything else (comments, key
// order) is kept.
package apply

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources"
)

// Folder is the subfolder of the watched directory that the writer owns.
const Folder = "api"

// MaxBody is the largest resource document accepted.
const MaxBody = 1 << 20

// header starts every file the writer creates.
const header = "# Written by reconciled through its API (reconcilectl apply).\n" +
	"# Edit it with reconcilectl apply/delete, or move it out of this folder\n" +
	"# to manage it with git like any other resource file.\n"

// Result says what an apply or delete did, in kubectl's words.
type Result string

// Results.
const (
	Created    Result = "created"
	Configured Result = "configured"
	Unchanged  Result = "unchanged"
	Deleted    Result = "deleted"
)

// InvalidError is input that does not decode or validate. Causes carry the
// field path and the line within the submitted document.
type InvalidError struct {
	Kind, Name string
	Causes     []*resources.Error
}

// Error lists the causes.
func (e *InvalidError) Error() string {
	msgs := make([]string, len(e.Causes))
	for i, c := range e.Causes {
		msgs[i] = c.Error()
	}
	return fmt.Sprintf("%s %q is invalid: %s", strings.ToLower(e.Kind), e.Name, strings.Join(msgs, "; "))
}

// BadRequestError is a request that cannot be understood: not YAML, not
// exactly one document, or a kind or name other than the URL's.
type BadRequestError struct{ Msg string }

// Error returns the message.
func (e *BadRequestError) Error() string { return e.Msg }

// ConflictError is a resource defined outside the writer's folder.
type ConflictError struct {
	Kind, Name string
	// Source is FILE:LINE of the definition.
	Source string
}

// Error explains where to make the change instead.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s/%s is defined in %s, not through the API: change it there", strings.ToLower(e.Kind), e.Name, e.Source)
}

// ErrNotFound is returned by Delete for a resource the store does not hold.
var ErrNotFound = errors.New("not found")

// Writer applies and deletes resources in a watched directory.
type Writer struct {
	store *resources.Store
	dir   string // <store dir>/api
}

// New returns a Writer for the store's directory.
func New(store *resources.Store) *Writer {
	return &Writer{store: store, dir: filepath.Join(store.Dir(), Folder)}
}

// Path returns the file a resource applied through the writer lives in.
func (w *Writer) Path(kind, name string) string {
	return filepath.Join(w.dir, strings.ToLower(kind)+"-"+name+".yaml")
}

// Apply creates or replaces the resource kind/name with the single YAML or
// JSON document body. It returns once the file is durable and the store has
// read it.
func (w *Writer) Apply(kind, name string, body []byte) (Result, error) {
	ki, ok := v1alpha1.LookupKind(kind)
	if !ok {
		return "", &BadRequestError{Msg: fmt.Sprintf("unknown kind %q", kind)}
	}
	if len(body) > MaxBody {
		return "", &BadRequestError{Msg: fmt.Sprintf("document larger than %d bytes", MaxBody)}
	}
	out, err := normalize(body)
	if err != nil {
		return "", err
	}
	docs, err := resources.DecodeFile("request", out)
	if err != nil {
		return "", &BadRequestError{Msg: err.Error()}
	}
	d := docs[0] // normalize checked there is exactly one
	if d.Kind != ki.Kind {
		return "", &BadRequestError{Msg: fmt.Sprintf("the document is a %q, the request is for %s", d.Kind, ki.Plural)}
	}
	if d.Name != name {
		return "", &BadRequestError{Msg: fmt.Sprintf("the document is named %q, the request is for %q", d.Name, name)}
	}
	if len(d.Errs) > 0 {
		return "", &InvalidError{Kind: ki.Kind, Name: name, Causes: d.Errs}
	}
	path := w.Path(ki.Kind, name)
	if err := w.owned(ki.Kind, name, path); err != nil {
		return "", err
	}
	content := append([]byte(header), out...)
	old, err := os.ReadFile(path)
	switch {
	case err == nil:
		// The old file also has the status the daemon wrote: compare
		// what is left of both.
		was, _ := normalize(old)
		now, _ := normalize(content)
		if bytes.Equal(was, now) {
			return Unchanged, nil
		}
	case !errors.Is(err, os.ErrNotExist):
		return "", err
	}
	if err := writeFile(path, content); err != nil {
		return "", err
	}
	w.store.Reload(path)
	if old == nil {
		return Created, nil
	}
	return Configured, nil
}

// Delete removes the resource kind/name, which must have been applied
// through the writer. It returns once the removal is durable; the store
// deletes the resource after its usual grace period.
func (w *Writer) Delete(kind, name string) (Result, error) {
	ki, ok := v1alpha1.LookupKind(kind)
	if !ok {
		return "", &BadRequestError{Msg: fmt.Sprintf("unknown kind %q", kind)}
	}
	if !w.store.Known(ki.Kind, name) {
		return "", fmt.Errorf("%s %q: %w", ki.Singular, name, ErrNotFound)
	}
	path := w.Path(ki.Kind, name)
	if err := w.owned(ki.Kind, name, path); err != nil {
		return "", err
	}
	if err := os.Remove(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s %q: %w", ki.Singular, name, ErrNotFound)
		}
		return "", err
	}
	syncDir(w.dir)
	w.store.Reload(path)
	return Deleted, nil
}

// owned returns a ConflictError when kind/name exists in a file other than
// path.
func (w *Writer) owned(kind, name, path string) error {
	o, ok := w.store.View(kind, name)
	if !ok {
		return nil
	}
	src := o.GetObjectMeta().Annotations[resources.AnnotationSource]
	file := src
	if i := strings.LastIndexByte(src, ':'); i > 0 {
		file = src[:i]
	}
	if file != path {
		return &ConflictError{Kind: kind, Name: name, Source: src}
	}
	return nil
}

// normalize checks that body is one YAML (or JSON) document and drops what
// the daemon owns: status, metadata.generation and creationTimestamp, and
// the source annotation it adds when serving objects.
func normalize(body []byte) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(body))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, &BadRequestError{Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
		}
		if len(n.Content) > 0 && !(n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			docs = append(docs, &n)
		}
	}
	if len(docs) != 1 {
		return nil, &BadRequestError{Msg: fmt.Sprintf("want exactly one resource document, got %d", len(docs))}
	}
	root := docs[0].Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &BadRequestError{Msg: "the document is not a mapping"}
	}
	if json := bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")); json {
		plain(root) // JSON input becomes block-style YAML
	}
	deleteKey(root, "status")
	if meta := mapValue(root, "metadata"); meta != nil {
		deleteKey(meta, "generation")
		deleteKey(meta, "creationTimestamp")
		if ann := mapValue(meta, "annotations"); ann != nil {
			deleteKey(ann, resources.AnnotationSource)
			if len(ann.Content) == 0 {
				deleteKey(meta, "annotations")
			}
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(docs[0]); err != nil {
		return nil, &BadRequestError{Msg: "cannot re-encode the document: " + err.Error()}
	}
	return b.Bytes(), nil
}

// plain drops JSON's styling: mappings in block style, strings quoted only
// where YAML needs it (the encoder quotes "100" so it stays a string).
func plain(n *yaml.Node) {
	switch {
	case n.Kind == yaml.MappingNode:
		n.Style = 0
	case n.Kind == yaml.ScalarNode && n.Style == yaml.DoubleQuotedStyle && !strings.ContainsAny(n.Value, "\n\t"):
		n.Style = 0
	}
	for _, c := range n.Content {
		plain(c)
	}
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func deleteKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// writeFile replaces path atomically and durably: temp file, fsync, rename,
// fsync of the folder.
func writeFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = unix.Fdatasync(int(f.Fd()))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}
