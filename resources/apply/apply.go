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
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/internal/atomicfile"
	"github.com/reconciled/reconciled/internal/regularfile"
	"github.com/reconciled/reconciled/internal/yamlnode"
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

// Writer applies and deletes resources in a watched directory. Its methods
// are safe for concurrent use; they run one at a time.
type Writer struct {
	store *resources.Store
	dir   string // <store dir>/api

	// mu serializes writes, so that SetSpecField's read-modify-write of a
	// file never interleaves with another change of it.
	mu sync.Mutex
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
	ki, err := lookupKind(kind)
	if err != nil {
		return "", err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.apply(ki, name, body)
}

// DryRun answers as Apply would, without writing: the result and the
// object the resource would become (defaulted and validated, without a
// status), or Apply's error (kubectl's --dry-run=server).
func (w *Writer) DryRun(kind, name string, body []byte) (Result, v1alpha1.Object, error) {
	ki, err := lookupKind(kind)
	if err != nil {
		return "", nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	p, err := w.prepare(ki, name, body)
	if err != nil {
		return "", nil, err
	}
	return p.result, p.obj, nil
}

// apply is Apply with w.mu held.
func (w *Writer) apply(ki v1alpha1.KindInfo, name string, body []byte) (Result, error) {
	p, err := w.prepare(ki, name, body)
	if err != nil || p.result == Unchanged {
		return p.result, err
	}
	if err := atomicfile.Write(p.path, p.content, 0o644); err != nil {
		return "", err
	}
	w.store.Reload(p.path)
	return p.result, nil
}

// prepared is an apply checked and ready to write.
type prepared struct {
	path    string
	content []byte
	obj     v1alpha1.Object
	result  Result
}

// prepare checks an apply (size, document, kind and name, validity, the
// file it would go to) and says what writing it would do.
func (w *Writer) prepare(ki v1alpha1.KindInfo, name string, body []byte) (prepared, error) {
	if len(body) > MaxBody {
		return prepared{}, &BadRequestError{Msg: fmt.Sprintf("document larger than %d bytes", MaxBody)}
	}
	out, err := normalize(body)
	if err != nil {
		return prepared{}, err
	}
	docs, err := resources.DecodeFile("request", out)
	if err != nil {
		return prepared{}, &BadRequestError{Msg: err.Error()}
	}
	d := docs[0] // normalize checked there is exactly one
	if d.Kind != ki.Kind {
		return prepared{}, &BadRequestError{Msg: fmt.Sprintf("the document is a %q, the request is for %s", d.Kind, ki.Plural)}
	}
	if d.Name != name {
		return prepared{}, &BadRequestError{Msg: fmt.Sprintf("the document is named %q, the request is for %q", d.Name, name)}
	}
	if len(d.Errs) > 0 {
		return prepared{}, &InvalidError{Kind: ki.Kind, Name: name, Causes: d.Errs}
	}
	path := w.Path(ki.Kind, name)
	if err := w.owned(ki.Kind, name, path); err != nil {
		return prepared{}, err
	}
	if err := w.realPath(path); err != nil {
		return prepared{}, err
	}
	p := prepared{path: path, content: append([]byte(header), out...), obj: d.Object, result: Created}
	old, _, err := regularfile.Read(path, resources.MaxFileSize)
	switch {
	case err == nil:
		// The old file also has the status the daemon wrote: compare
		// what is left of both.
		was, _ := normalize(old)
		now, _ := normalize(p.content)
		p.result = Configured
		if bytes.Equal(was, now) {
			p.result = Unchanged
		}
	case !errors.Is(err, os.ErrNotExist):
		return prepared{}, err
	}
	return p, nil
}

// Delete removes the resource kind/name, which must have been applied
// through the writer. It returns once the removal is durable; the store
// deletes the resource after its usual grace period.
func (w *Writer) Delete(kind, name string) (Result, error) {
	return w.delete(kind, name, false)
}

// DryRunDelete answers as Delete would, without removing anything.
func (w *Writer) DryRunDelete(kind, name string) (Result, error) {
	return w.delete(kind, name, true)
}

func (w *Writer) delete(kind, name string, dryRun bool) (Result, error) {
	ki, err := lookupKind(kind)
	if err != nil {
		return "", err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	path, err := w.ownedFile(ki, name)
	if err != nil {
		return "", err
	}
	if err := w.realPath(path); err != nil {
		return "", err
	}
	if dryRun {
		if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s %q: %w", ki.Singular, name, ErrNotFound)
		}
		return Deleted, nil
	}
	if err := os.Remove(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s %q: %w", ki.Singular, name, ErrNotFound)
		}
		return "", err
	}
	atomicfile.SyncDir(w.dir)
	w.store.Reload(path)
	return Deleted, nil
}

// SetSpecField sets spec.<field> of the resource kind/name, which must have
// been applied through the writer, to the string value (start and stop over
// MQTT set spec.state to Running or Stopped). Everything else in the file
// stays as it is, comments included. The edited document goes through the
// same path as Apply: it is validated (an *InvalidError when the value is
// not allowed or the kind has no such field), written durably and read by
// the store before SetSpecField returns, and the result is Unchanged when
// the field already had the value.
//
// A resource defined in any other file is refused with a *ConflictError,
// one the store does not hold with ErrNotFound, and a field name that is
// empty or a path (holds a dot) with a *BadRequestError.
func (w *Writer) SetSpecField(kind, name, field, value string) (Result, error) {
	ki, err := lookupKind(kind)
	if err != nil {
		return "", err
	}
	if field == "" || strings.ContainsAny(field, ".\n\r") {
		return "", &BadRequestError{Msg: fmt.Sprintf("invalid spec field %q: want a field name, not a path", field)}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	path, err := w.ownedFile(ki, name)
	if err != nil {
		return "", err
	}
	if err := w.realPath(path); err != nil {
		return "", err
	}
	data, _, err := regularfile.Read(path, resources.MaxFileSize)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s %q: %w", ki.Singular, name, ErrNotFound)
	}
	if err != nil {
		return "", err
	}
	body, err := setSpecField(bytes.TrimPrefix(data, []byte(header)), field, value)
	if err != nil {
		return "", &BadRequestError{Msg: fmt.Sprintf("cannot edit %s: %v", path, err)}
	}
	return w.apply(ki, name, body)
}

// setSpecField returns the single YAML document doc with spec.<field> set to
// the string value; the rest of the document, comments included, is kept.
// A missing or empty spec becomes a mapping.
func setSpecField(doc []byte, field, value string) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, errors.New("invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "))
		}
		docs = append(docs, &n)
	}
	if len(docs) != 1 {
		return nil, fmt.Errorf("want exactly one resource document, got %d", len(docs))
	}
	n := docs[0]
	if len(n.Content) == 0 || n.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("the document is not a mapping")
	}
	root := n.Content[0]
	spec := yamlnode.Get(root, "spec")
	if spec == nil {
		spec = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "spec"}, spec)
	} else if spec.Kind != yaml.MappingNode {
		// "spec:" with no value (null): make it a mapping, keep its comments.
		*spec = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", HeadComment: spec.HeadComment, LineComment: spec.LineComment, FootComment: spec.FootComment}
	}
	scalar := yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
	if v := yamlnode.Get(spec, field); v != nil {
		scalar.HeadComment, scalar.LineComment, scalar.FootComment = v.HeadComment, v.LineComment, v.FootComment
		*v = scalar
	} else {
		spec.Content = append(spec.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: field}, &scalar)
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ErrSymlink is returned (wrapped) when the writer's folder or file is a
// symbolic link: a write through it would land outside --dir, where the
// store does not read it (the resource would vanish at the next start).
var ErrSymlink = errors.New("is a symbolic link; reconciled writes only into a real folder inside --dir")

// realPath checks that the writer's folder and the file path are no
// symbolic links (a missing one is fine: Write creates it).
func (w *Writer) realPath(path string) error {
	for _, p := range []string{w.dir, path} {
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return err
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			return fmt.Errorf("%s (-> %s) %w: remove the link", p, target, ErrSymlink)
		case p == path && !fi.Mode().IsRegular():
			return fmt.Errorf("%s is not a regular file: remove it", p)
		}
	}
	return nil
}

// lookupKind resolves any spelling of a kind, or a BadRequestError.
func lookupKind(kind string) (v1alpha1.KindInfo, error) {
	ki, ok := v1alpha1.LookupKind(kind)
	if !ok {
		return ki, &BadRequestError{Msg: fmt.Sprintf("unknown kind %q", kind)}
	}
	return ki, nil
}

// ownedFile returns the file of an existing resource the writer owns:
// ErrNotFound for a resource the store does not hold, a ConflictError for
// one defined in another file.
func (w *Writer) ownedFile(ki v1alpha1.KindInfo, name string) (string, error) {
	if !w.store.Known(ki.Kind, name) {
		return "", fmt.Errorf("%s %q: %w", ki.Singular, name, ErrNotFound)
	}
	path := w.Path(ki.Kind, name)
	return path, w.owned(ki.Kind, name, path)
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
		yamlnode.Plain(root) // JSON input becomes block-style YAML
	}
	yamlnode.Delete(root, "status")
	if meta := yamlnode.Get(root, "metadata"); meta != nil {
		yamlnode.Delete(meta, "generation")
		yamlnode.Delete(meta, "creationTimestamp")
		if ann := yamlnode.Get(meta, "annotations"); ann != nil {
			yamlnode.Delete(ann, resources.AnnotationSource)
			if len(ann.Content) == 0 {
				yamlnode.Delete(meta, "annotations")
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
