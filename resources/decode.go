// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/internal/yamlnode"
)

// Error is a problem with one place in a resource file. Its text is
// "FILE:LINE: FIELD: MESSAGE" (FIELD omitted when the problem is not about
// one field), which editors and CI logs turn into links.
type Error struct {
	File    string
	Line    int
	Field   string
	Message string
}

// Error formats the problem as FILE:LINE: FIELD: MESSAGE.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Document is one resource document decoded from a file.
type Document struct {
	// File and Line locate the document (Line of its first key).
	File string
	Line int
	// Revision is the version of the source the file was read at (a git
	// commit), or "" for a source without versions.
	Revision string
	// Kind and Name are read leniently, so they are known (when present in
	// the file) even for a document that fails to decode.
	Kind, Name string
	// Object is the defaulted, validated object; nil when Errs is not empty.
	Object v1alpha1.Object
	// SpecHash identifies the spec's content (not its formatting).
	SpecHash string
	// HasStatus reports whether the document carried a status block that
	// decoded cleanly into Object.
	HasStatus bool
	// Errs lists every problem found, each with its line.
	Errs []*Error
}

// Err joins the document's errors, or returns nil.
func (d *Document) Err() error {
	if len(d.Errs) == 0 {
		return nil
	}
	errs := make([]error, len(d.Errs))
	for i, e := range d.Errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// Identified reports whether the document names a known kind, spelled as
// in files ("Process", not "process"), and a name.
func (d *Document) Identified() bool {
	ki, ok := v1alpha1.LookupKind(d.Kind)
	return ok && ki.Kind == d.Kind && d.Name != ""
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// unknownAnchorRE is yaml.v3's error for an alias to no anchor.
var unknownAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// yamlParserProblems are the problems yaml.v3's parser (as opposed to its
// scanner) reports. For these it prints the 0-based line of the enclosing
// construct or of the offending token (go-yaml/yaml#205), one less than
// the line an editor shows.
var yamlParserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected key":              true,
	"did not find expected '-' indicator":    true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found undefined tag handle":             true,
	"found duplicate %YAML directive":        true,
	"found duplicate %TAG directive":         true,
	"found incompatible YAML document":       true,
}

// syntaxError turns a yaml.v3 parse error into an Error with a 1-based line.
func syntaxError(file string, data []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if yamlParserProblems[msg] {
		line++ // also when yaml.v3 printed no line: that means line 0
		// A problem found at the end of the input is on the last line.
		line = min(line, bytes.Count(bytes.TrimRight(data, " \t\r\n"), []byte("\n"))+1)
	}
	if line == 0 {
		// No position from yaml.v3: an unknown alias is where "*name" is;
		// bytes the reader refused (invalid UTF-8, control characters)
		// are at the first bad byte; anything else is on the first line.
		at := firstBadByte(data)
		if m := unknownAnchorRE.FindStringSubmatch(msg); m != nil {
			if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
				at = i
			}
		}
		line = 1 + bytes.Count(data[:at], []byte("\n"))
	}
	return &Error{File: file, Line: line, Message: "invalid YAML: " + msg}
}

// firstBadByte returns the offset of the first byte YAML's reader refuses
// (invalid UTF-8, or a control character other than tab and line breaks),
// or 0 when there is none.
func firstBadByte(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if (r == utf8.RuneError && size <= 1) || (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f {
			return i
		}
		i += size
	}
	return 0
}

// DecodeFile decodes every document of a resource file. Documents that are
// empty are skipped. The error is non-nil only when the file as a whole does
// not parse as YAML (then no documents are returned); problems with single
// documents are in their Errs.
func DecodeFile(file string, data []byte) ([]*Document, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*Document
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, syntaxError(file, data, err)
		}
		root := &n
		if root.Kind == yaml.DocumentNode {
			if len(root.Content) == 0 {
				continue
			}
			root = root.Content[0]
		}
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue
		}
		docs = append(docs, decodeDocument(file, root))
	}
	return docs, nil
}

// decodeDocument decodes one document's root node.
func decodeDocument(file string, root *yaml.Node) *Document {
	d := &Document{File: file, Line: root.Line}
	fail := func(line int, field, msg string) {
		d.Errs = append(d.Errs, &Error{File: file, Line: line, Field: field, Message: msg})
	}
	if root.Kind != yaml.MappingNode {
		fail(root.Line, "", "a resource must be a mapping with apiVersion, kind, metadata and spec")
		return d
	}
	if n := yamlnode.Get(root, "kind"); n != nil && n.Kind == yaml.ScalarNode {
		d.Kind = n.Value
	}
	if md := yamlnode.Get(root, "metadata"); md != nil {
		if n := yamlnode.Get(md, "name"); n != nil && n.Kind == yaml.ScalarNode {
			d.Name = n.Value
		}
	}
	ki, ok := v1alpha1.LookupKind(d.Kind)
	switch {
	case d.Kind == "":
		fail(root.Line, "kind", "required: one of "+strings.Join(v1alpha1.KindNames(), ", "))
		return d
	case !ok || ki.Kind != d.Kind:
		fail(lineOf(root, "kind"), "kind", fmt.Sprintf("unknown kind %q: want one of %s", d.Kind, strings.Join(v1alpha1.KindNames(), ", ")))
		return d
	}
	obj := ki.New()
	dc := &nodeDecoder{file: file}
	// Decode everything but status strictly; status is the daemon's and is
	// read leniently so a hand-edited status never blocks the spec.
	var statusNode *yaml.Node
	stripped := &yaml.Node{Kind: yaml.MappingNode, Line: root.Line, Column: root.Column}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "status" {
			statusNode = root.Content[i+1]
			continue
		}
		stripped.Content = append(stripped.Content, root.Content[i], root.Content[i+1])
	}
	dc.decode(stripped, reflect.ValueOf(obj).Elem(), "")
	d.Errs = append(d.Errs, dc.errs...)
	if yamlnode.Get(root, "apiVersion") == nil {
		fail(root.Line, "apiVersion", "required: "+v1alpha1.APIVersion)
	}
	if yamlnode.Get(root, "spec") == nil {
		fail(root.Line, "spec", "required")
	}
	if statusNode != nil && len(d.Errs) == 0 {
		sd := &nodeDecoder{file: file}
		sd.decode(statusNode, reflect.ValueOf(obj.GetStatus()).Elem(), "status")
		if len(sd.errs) == 0 {
			d.HasStatus = true
		} else {
			reflect.ValueOf(obj.GetStatus()).Elem().SetZero()
		}
	}
	// Validate also what decoded around a type error, so one run reports
	// every problem of the document; a field that did not decode is not
	// reported again as missing or invalid.
	decodeErrs := slices.Clone(d.Errs)
	obj.Default()
	for _, fe := range obj.Validate() {
		if !coveredBy(fe.Field, decodeErrs) {
			fail(lineOf(root, fe.Field), fe.Field, fe.ErrorBody())
		}
	}
	if len(d.Errs) > 0 {
		return d
	}
	d.Object = obj
	d.SpecHash = SpecHash(obj)
	return d
}

// coveredBy reports whether a validation error of field concerns a field
// (or a part of one) that already failed to decode.
func coveredBy(field string, errs []*Error) bool {
	for _, e := range errs {
		if e.Field != "" && (field == e.Field || strings.HasPrefix(field, e.Field+".") || strings.HasPrefix(field, e.Field+"[") ||
			strings.HasPrefix(e.Field, field+".") || strings.HasPrefix(e.Field, field+"[")) {
			return true
		}
	}
	return false
}

// SpecHash returns a hash of the object's defaulted spec content. Two specs
// that differ only in formatting, key order or spelled-out defaults hash
// the same.
func SpecHash(obj v1alpha1.Object) string {
	b, err := json.Marshal(obj.GetSpec())
	if err != nil {
		panic(fmt.Sprintf("marshal spec: %v", err)) // spec types always marshal
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

var pathSegRE = regexp.MustCompile(`[^.\[\]]+|\[[^\]]*\]`)

// lineOf returns the line of the deepest node on a field path such as
// "spec.readiness.exec.command[0]" or "spec.env[FOO]".
func lineOf(root *yaml.Node, path string) int {
	n := root
	line := root.Line
	for _, seg := range pathSegRE.FindAllString(path, -1) {
		var next *yaml.Node
		if strings.HasPrefix(seg, "[") {
			key := strings.TrimSuffix(strings.TrimPrefix(seg, "["), "]")
			if i, err := strconv.Atoi(key); err == nil && n.Kind == yaml.SequenceNode {
				if i >= 0 && i < len(n.Content) {
					next = n.Content[i]
				}
			} else if n.Kind == yaml.MappingNode {
				for j := 0; j+1 < len(n.Content); j += 2 {
					if n.Content[j].Value == key {
						line = n.Content[j].Line
						next = n.Content[j+1]
					}
				}
			}
		} else if n.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(n.Content); j += 2 {
				if n.Content[j].Value == seg {
					line = n.Content[j].Line
					next = n.Content[j+1]
				}
			}
		}
		if next == nil {
			return line
		}
		n = next
		if n.Kind != yaml.MappingNode && n.Kind != yaml.SequenceNode {
			line = n.Line
		}
	}
	return line
}

// DecodeStrict decodes a single-document YAML file into v by its json tags,
// rejecting unknown fields, duplicate keys and wrong types with file:line.
// An empty file leaves v unchanged.
func DecodeStrict(file string, data []byte, v any) error {
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return syntaxError(file, data, err)
	}
	if n.Kind == 0 || len(n.Content) == 0 {
		return nil
	}
	d := &nodeDecoder{file: file}
	d.decode(n.Content[0], reflect.ValueOf(v).Elem(), "")
	if len(d.errs) > 0 {
		errs := make([]error, len(d.errs))
		for i, e := range d.errs {
			errs[i] = e
		}
		return errors.Join(errs...)
	}
	return nil
}
