// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package yamledit rewrites the top-level status block and the
// metadata.generation value of one resource document inside a (possibly
// multi-document) YAML file, keeping every other byte of the file unchanged.
//
// The package never re-marshals a document. It parses the file with the
// yaml.v3 Node API only to locate keys, and then splices new text into the
// original bytes. Before returning, SetStatus parses its own output again
// and checks that only status and metadata.generation changed; if that check
// fails the call returns an error instead of a wrong file.
//
// Decisions worth knowing:
//
//   - Line endings: input containing "\r" (CRLF or lone CR) is rejected, as is
//     input containing U+0085, U+2028 or U+2029, which YAML 1.1 parsers treat
//     as line breaks. Only "\n" line endings are supported.
//   - A status block ends at the last line belonging to its value. Trailing
//     blank lines and column-0 comment lines between that line and the next
//     top-level key (or the end of the document) belong to the document and
//     are kept. Blank lines that are part of a keep-chomped block scalar
//     ("|+", ">+") belong to the value.
//   - When a document has no status key, the new block is appended right
//     after the last line of the last top-level value, before any trailing
//     blank lines or column-0 comment lines of the document, so a trailing
//     comment block stays at the end of the document.
//   - The status block always ends with a newline. When it is written at the
//     end of a file that has no final newline, a newline is inserted before
//     it, so the file then ends with a newline. Removing a status block at the
//     end of such a file leaves the newline of the preceding line in place.
//   - Only block-style top-level mappings whose keys start at column 1 can be
//     edited. Anchors, aliases and merge keys on top-level keys or values, in
//     metadata, or anchors inside status, as well as tabs in the indentation
//     of the edited document, make SetStatus return an error.
//   - Empty documents are skipped; any other document that is not a mapping
//     makes SetStatus return an error.
package yamledit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// ErrNotFound reports that no document with the given kind and name exists.
var ErrNotFound = errors.New("document not found")

// errUnsafe marks edits that were computed but rejected by the final
// self-check of SetStatus.
var errUnsafe = errors.New("cannot edit safely")

var utf8BOM = []byte("\xef\xbb\xbf")

// SetStatus returns a copy of src in which the document whose top-level `kind`
// equals kind and whose `metadata.name` equals name has:
//   - its top-level `status` key set to the YAML mapping `status` (block-style YAML
//     text as produced by sigs.k8s.io/yaml.Marshal / yaml.v3 Marshal of a map or struct,
//     keys at column 0, e.g. "phase: Running\npid: 42\n"); if status is nil or empty
//     the status key is removed entirely (and a document that had none is untouched);
//   - `metadata.generation` set to generation when generation > 0 (inserted into the
//     metadata mapping if absent; left alone when generation == 0).
//
// Everything else is byte-for-byte unchanged. It returns ErrNotFound (wrapped) when no
// such document exists, and an error (not a panic) for input it cannot edit safely.
// When several documents match, the first one is edited.
func SetStatus(src []byte, kind, name string, generation int64, status []byte) ([]byte, error) {
	out, errs, err := SetStatuses(src, []Edit{{Kind: kind, Name: name, Generation: generation, Status: status}})
	if err == nil {
		err = errs[0]
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Edit is one document's new status and generation, for SetStatuses; the
// fields mean what SetStatus's arguments mean.
type Edit struct {
	Kind, Name string
	Generation int64
	Status     []byte
}

// SetStatuses makes several SetStatus edits of one file with a single parse
// of the file and a single check of the result, so that the cost of writing
// back the statuses of every document of a file grows with the file's size,
// not with its size times its number of documents.
//
// errs[i] is nil when edits[i] was made, or says why it was not (ErrNotFound,
// a document that cannot be edited safely, a bad status, a second edit of
// the same document); the other edits are made regardless. err is set, and
// out is nil, when no edit can be made: the file does not parse, holds a
// document that is not a mapping, or the final check fails.
//
// Files whose every line ends in "\r\n" are edited like "\n" files and
// keep their CRLF line endings.
func SetStatuses(src []byte, edits []Edit) (out []byte, errs []error, err error) {
	errs = make([]error, len(edits))
	crlf := isCRLF(src)
	if crlf {
		src = bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n"))
	}
	if err := checkLineBreaks(src, "input"); err != nil {
		return nil, errs, err
	}
	docs, err := decodeNodes(src)
	if err != nil {
		return nil, errs, fmt.Errorf("yamledit: parsing input: %w", err)
	}
	vals := make([]any, len(docs))
	type id struct{ kind, name string }
	first := map[id]int{}
	for i, doc := range docs {
		root := docRoot(doc)
		if root == nil {
			continue
		}
		if root.Kind != yaml.MappingNode {
			return nil, errs, fmt.Errorf("yamledit: document %d is not a mapping", i+1)
		}
		v, err := decodeValue(doc)
		if err != nil {
			return nil, errs, fmt.Errorf("yamledit: decoding document %d: %w", i+1, err)
		}
		vals[i] = v
		if k, n, ok := identity(v); ok {
			if _, dup := first[id{k, n}]; !dup {
				first[id{k, n}] = i
			}
		}
	}

	f := newFile(src)
	var textEdits []edit
	want := map[int]docEdit{} // document index -> what its check expects
	for i, ed := range edits {
		what := fmt.Sprintf("%s %q", ed.Kind, ed.Name)
		if ed.Generation < 0 {
			errs[i] = fmt.Errorf("yamledit: %s: negative generation %d", what, ed.Generation)
			continue
		}
		st, err := parseStatus(ed.Status)
		if err != nil {
			errs[i] = err
			continue
		}
		target, ok := first[id{ed.Kind, ed.Name}]
		if !ok {
			errs[i] = fmt.Errorf("yamledit: %s: %w", what, ErrNotFound)
			continue
		}
		if _, twice := want[target]; twice {
			errs[i] = fmt.Errorf("yamledit: %s: edited twice in one call", what)
			continue
		}
		e := &editor{f: f, root: docRoot(docs[target]), what: what}
		planned, err := e.plan(ed.Generation, st)
		if err != nil {
			errs[i] = err
			continue
		}
		textEdits = append(textEdits, planned...)
		want[target] = docEdit{status: st, generation: ed.Generation}
	}
	if len(want) == 0 {
		return slices.Clone(src), errs, nil
	}
	out = apply(src, textEdits)
	if err := verify(vals, want, out); err != nil {
		return nil, errs, fmt.Errorf("yamledit: %w", err)
	}
	if crlf {
		out = bytes.ReplaceAll(out, []byte("\n"), []byte("\r\n"))
	}
	return out, errs, nil
}

// isCRLF reports whether src has line breaks and every one is "\r\n", with
// no other carriage return.
func isCRLF(src []byte) bool {
	n := bytes.Count(src, []byte("\n"))
	return n > 0 && bytes.Count(src, []byte("\r\n")) == n && bytes.Count(src, []byte("\r")) == n
}

// docEdit is what verify expects of one edited document.
type docEdit struct {
	status     *status
	generation int64
}

// checkLineBreaks rejects carriage returns and the Unicode characters that
// YAML 1.1 parsers count as line breaks, so that line numbers reported by the
// parser always agree with "\n"-separated lines.
func checkLineBreaks(b []byte, what string) error {
	if bytes.IndexByte(b, '\r') >= 0 {
		return fmt.Errorf("yamledit: %s contains \\r: only \\n line endings are supported", what)
	}
	for _, r := range []string{"\u0085", "\u2028", "\u2029"} {
		if bytes.Contains(b, []byte(r)) {
			return fmt.Errorf("yamledit: %s contains line break character %U: only \\n line endings are supported", what, []rune(r)[0])
		}
	}
	return nil
}

// status is the parsed status argument.
type status struct {
	empty bool
	value any
	block []byte // "status:\n" followed by the indented text, ending in "\n"
}

func parseStatus(b []byte) (*status, error) {
	if err := checkLineBreaks(b, "status"); err != nil {
		return nil, err
	}
	docs, err := decodeNodes(b)
	if err != nil {
		return nil, fmt.Errorf("yamledit: parsing status: %w", err)
	}
	switch len(docs) {
	case 0:
		return &status{empty: true}, nil
	case 1:
	default:
		return nil, errors.New("yamledit: status holds more than one YAML document")
	}
	root := docRoot(docs[0])
	if root == nil || (root.Kind == yaml.MappingNode && len(root.Content) == 0) {
		return &status{empty: true}, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, errors.New("yamledit: status is not a YAML mapping")
	}
	if hasAnchor(root) {
		// An anchor in the written block could capture aliases later in the
		// document, and a block with anchors cannot be edited again.
		return nil, errors.New("yamledit: status uses anchors")
	}
	v, err := decodeValue(docs[0])
	if err != nil {
		return nil, fmt.Errorf("yamledit: decoding status: %w", err)
	}
	if b[len(b)-1] != '\n' {
		// The block written into the file ends with a newline; make sure
		// that does not change the value (as it would for a block scalar
		// at the very end).
		b = append(slices.Clip(b), '\n')
		if !sameValue(b, v) {
			return nil, errors.New("yamledit: status does not end with a newline and its last value depends on that")
		}
	}
	// Trailing blank lines would be kept out of the status block when it is
	// edited again, so drop them unless they are part of the value (as with
	// a keep-chomped block scalar at the end).
	if trimmed := trimBlankLines(b); len(trimmed) < len(b) && sameValue(trimmed, v) {
		b = trimmed
	}
	var buf bytes.Buffer
	buf.WriteString("status:\n")
	for line := range bytes.Lines(b) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		if isMarker(line) || bytes.HasPrefix(line, []byte("%")) {
			return nil, errors.New("yamledit: status contains a document marker or directive")
		}
		if len(line) > 0 {
			buf.WriteString("  ")
			buf.Write(line)
		}
		buf.WriteByte('\n')
	}
	return &status{value: v, block: buf.Bytes()}, nil
}

func hasAnchor(n *yaml.Node) bool {
	return n.Anchor != "" || slices.ContainsFunc(n.Content, hasAnchor)
}

// sameValue reports whether b holds one YAML document that decodes to v.
func sameValue(b []byte, v any) bool {
	d, err := decodeNodes(b)
	if err != nil || len(d) != 1 {
		return false
	}
	w, err := decodeValue(d[0])
	return err == nil && equal(v, w)
}

// trimBlankLines removes trailing lines of b that hold only spaces and tabs.
func trimBlankLines(b []byte) []byte {
	end, off := 0, 0
	for line := range bytes.Lines(b) {
		off += len(line)
		if !blankLine(bytes.TrimSuffix(line, []byte("\n"))) {
			end = off
		}
	}
	return b[:end]
}

// decodeNodes decodes every document of b into a yaml.Node.
func decodeNodes(b []byte) (docs []*yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			docs, err = nil, fmt.Errorf("yaml parser panicked: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return docs, nil
			}
			return nil, err
		}
		docs = append(docs, &n)
	}
}

// decodeValue decodes a document node into generic Go values.
func decodeValue(n *yaml.Node) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("yaml decoder panicked: %v", r)
		}
	}()
	err = n.Decode(&v)
	return v, err
}

// docRoot returns the root node of a document, or nil for an empty (null)
// document.
func docRoot(doc *yaml.Node) *yaml.Node {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	return root
}

func lookup(m any, key string) (any, bool) {
	switch m := m.(type) {
	case map[string]any:
		v, ok := m[key]
		return v, ok
	case map[any]any:
		v, ok := m[key]
		return v, ok
	}
	return nil, false
}

func remove(m any, key string) {
	switch m := m.(type) {
	case map[string]any:
		delete(m, key)
	case map[any]any:
		delete(m, key)
	}
}

// identity returns a decoded document's kind and metadata.name when both
// are strings.
func identity(doc any) (kind, name string, ok bool) {
	k, _ := lookup(doc, "kind")
	kind, ok1 := k.(string)
	md, _ := lookup(doc, "metadata")
	n, _ := lookup(md, "name")
	name, ok2 := n.(string)
	return kind, name, ok1 && ok2
}

// file gives line-oriented access to the original bytes.
type file struct {
	src   []byte
	bom   int   // length of a leading byte order mark
	lines []int // start offset of every line; a final "\n" starts an empty last line
}

func newFile(src []byte) *file {
	f := &file{src: src, lines: []int{0}}
	if bytes.HasPrefix(src, utf8BOM) {
		f.bom = len(utf8BOM)
	}
	for i, c := range src {
		if c == '\n' {
			f.lines = append(f.lines, i+1)
		}
	}
	return f
}

// start returns the offset of line i (0-based); start(len(lines)) is len(src).
func (f *file) start(i int) int {
	switch {
	case i >= len(f.lines):
		return len(f.src)
	case i == 0:
		return f.bom
	}
	return f.lines[i]
}

// line returns the text of line i without its newline.
func (f *file) line(i int) []byte {
	if i >= len(f.lines) {
		return nil
	}
	end := len(f.src)
	if i+1 < len(f.lines) {
		end = f.lines[i+1] - 1
	}
	return f.src[f.start(i):end]
}

// offset converts a 1-based yaml.v3 line and column (counted in characters)
// into a byte offset.
func (f *file) offset(line, col int) (int, error) {
	if line < 1 || line > len(f.lines) || col < 1 {
		return 0, fmt.Errorf("position %d:%d out of range", line, col)
	}
	text := f.line(line - 1)
	off := 0
	for range col - 1 {
		if off >= len(text) {
			return 0, fmt.Errorf("position %d:%d out of range", line, col)
		}
		_, size := utf8.DecodeRune(text[off:])
		off += size
	}
	return f.start(line-1) + off, nil
}

func (f *file) blank(i int) bool {
	return blankLine(f.line(i))
}

func blankLine(line []byte) bool {
	return len(bytes.Trim(line, " \t")) == 0
}

func (f *file) col0Comment(i int) bool {
	return bytes.HasPrefix(f.line(i), []byte("#"))
}

// isMarker reports whether line is a "---" or "..." document marker line.
func isMarker(line []byte) bool {
	if len(line) < 3 || !(bytes.HasPrefix(line, []byte("---")) || bytes.HasPrefix(line, []byte("..."))) {
		return false
	}
	return len(line) == 3 || line[3] == ' ' || line[3] == '\t'
}

// docEnd returns the index of the first document marker line after line i,
// or len(lines) when the document runs to the end of the file.
func (f *file) docEnd(i int) int {
	for j := i + 1; j < len(f.lines); j++ {
		if isMarker(f.line(j)) {
			return j
		}
	}
	return len(f.lines)
}

// docStart returns the index of the first line after the last document
// marker line before line i.
func (f *file) docStart(i int) int {
	for j := i - 1; j >= 0; j-- {
		if isMarker(f.line(j)) {
			return j + 1
		}
	}
	return 0
}

type edit struct {
	start, end int
	text       []byte
}

// apply returns src with the edits made; edits must not overlap. It copies
// src once, whatever the number of edits.
func apply(src []byte, edits []edit) []byte {
	slices.SortStableFunc(edits, func(a, b edit) int { return a.start - b.start })
	size := len(src)
	for _, e := range edits {
		size += len(e.text) - (e.end - e.start)
	}
	out := make([]byte, 0, size)
	at := 0
	for _, e := range edits {
		out = append(out, src[at:e.start]...)
		out = append(out, e.text...)
		at = e.end
	}
	return append(out, src[at:]...)
}

// editor plans the edits of one document.
type editor struct {
	f    *file
	root *yaml.Node // the document's top-level mapping
	what string
}

func (e *editor) errorf(format string, args ...any) error {
	return fmt.Errorf("yamledit: %s: "+format, append([]any{e.what}, args...)...)
}

func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && (k.Tag == "!!merge" || (k.Value == "<<" && k.Style == 0))
}

func isKey(k *yaml.Node, name string) bool {
	return k.Kind == yaml.ScalarNode && k.Value == name && k.Tag == "!!str"
}

// checkTree returns an error when n or any node below it carries an anchor,
// or, when aliases is false, is an alias or a merge key.
func (e *editor) checkTree(n *yaml.Node, what string, aliases bool) error {
	if n.Anchor != "" {
		return e.errorf("%s uses anchor &%s", what, n.Anchor)
	}
	if !aliases && (n.Kind == yaml.AliasNode || isMerge(n)) {
		return e.errorf("%s uses an alias or merge key (line %d)", what, n.Line)
	}
	if n.Kind == yaml.AliasNode {
		return nil
	}
	for _, c := range n.Content {
		if err := e.checkTree(c, what, aliases); err != nil {
			return err
		}
	}
	return nil
}

func (e *editor) plan(generation int64, st *status) ([]edit, error) {
	root, f := e.root, e.f
	if root.Style&yaml.FlowStyle != 0 {
		return nil, e.errorf("top-level mapping is in flow style")
	}
	if root.Anchor != "" {
		return nil, e.errorf("top-level mapping has anchor &%s", root.Anchor)
	}
	if len(root.Content) == 0 || len(root.Content)%2 != 0 {
		return nil, e.errorf("malformed top-level mapping")
	}
	statusIdx, metaIdx := -1, -1
	for i := 0; i < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Anchor != "" || isMerge(k) {
			return nil, e.errorf("top-level key at line %d is not a plain key", k.Line)
		}
		if k.Column != 1 {
			return nil, e.errorf("top-level key %q at line %d does not start at column 1", k.Value, k.Line)
		}
		if i > 0 && k.Line <= root.Content[i-2].Line {
			return nil, e.errorf("top-level key %q at line %d shares a line with another key", k.Value, k.Line)
		}
		if v.Kind == yaml.AliasNode || v.Anchor != "" {
			return nil, e.errorf("top-level value of %q uses an anchor or alias", k.Value)
		}
		switch {
		case isKey(k, "status"):
			if statusIdx < 0 {
				statusIdx = i
			}
		case isKey(k, "metadata"):
			if metaIdx < 0 {
				metaIdx = i
			}
		}
	}
	first := root.Content[0].Line - 1
	for i, end := f.docStart(first), f.docEnd(first); i < end; i++ {
		line := f.line(i)
		indent := line[:len(line)-len(bytes.TrimLeft(line, " \t"))]
		if bytes.IndexByte(indent, '\t') >= 0 {
			return nil, e.errorf("line %d is indented with a tab", i+1)
		}
	}

	var edits []edit
	if generation > 0 {
		if metaIdx < 0 {
			return nil, e.errorf("no metadata mapping")
		}
		ed, err := e.planGeneration(root.Content[metaIdx+1], generation)
		if err != nil {
			return nil, err
		}
		edits = append(edits, ed)
	}

	switch {
	case statusIdx >= 0:
		if err := e.checkTree(root.Content[statusIdx+1], "status", true); err != nil {
			return nil, err
		}
		start := f.start(root.Content[statusIdx].Line - 1)
		end := e.valueEnd(statusIdx)
		var text []byte
		if !st.empty {
			text = st.block
		}
		edits = append(edits, edit{start: start, end: end, text: text})
	case !st.empty:
		end := e.valueEnd(len(root.Content) - 2)
		text := st.block
		if end == len(f.src) && end > 0 && f.src[end-1] != '\n' {
			text = slices.Concat([]byte{'\n'}, text)
		}
		edits = append(edits, edit{start: end, end: end, text: text})
	}
	return edits, nil
}

// valueEnd returns the offset just past the last line that belongs to the
// value of the top-level key root.Content[i].
func (e *editor) valueEnd(i int) int {
	f, root := e.f, e.root
	keyLine := root.Content[i].Line - 1
	limit := f.docEnd(keyLine)
	if i+2 < len(root.Content) {
		limit = root.Content[i+2].Line - 1
	}
	j := limit
	for j > keyLine+1 && (f.blank(j-1) || f.col0Comment(j-1)) {
		j--
	}
	if e.keepsTrailingBreaks(root.Content[i+1]) {
		for j < limit && f.blank(j) {
			j++
		}
	}
	return f.start(j)
}

// keepsTrailingBreaks reports whether n ends with a keep-chomped block
// scalar, whose value includes the blank lines that follow it.
func (e *editor) keepsTrailingBreaks(n *yaml.Node) bool {
	for (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && n.Style&yaml.FlowStyle == 0 && len(n.Content) > 0 {
		n = n.Content[len(n.Content)-1]
	}
	if n.Kind != yaml.ScalarNode || n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		return false
	}
	off, err := e.f.offset(n.Line, n.Column)
	if err != nil {
		return true // be conservative: keep the blank lines in the value
	}
	rest := e.f.src[off:]
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[:i]
	}
	// Skip a tag and an anchor in front of the block scalar indicator.
	for len(rest) > 0 && (rest[0] == '!' || rest[0] == '&') {
		i := bytes.IndexAny(rest, " \t")
		if i < 0 {
			return true
		}
		rest = bytes.TrimLeft(rest[i:], " \t")
	}
	if len(rest) == 0 || (rest[0] != '|' && rest[0] != '>') {
		return true
	}
	for _, c := range rest[1:] {
		switch {
		case c == '+':
			return true
		case c == '-' || (c >= '0' && c <= '9'):
		default:
			return false
		}
	}
	return false
}

func (e *editor) planGeneration(md *yaml.Node, generation int64) (edit, error) {
	f := e.f
	if md.Kind != yaml.MappingNode || len(md.Content) == 0 {
		return edit{}, e.errorf("metadata is not a mapping")
	}
	if err := e.checkTree(md, "metadata", false); err != nil {
		return edit{}, err
	}
	gen := strconv.FormatInt(generation, 10)
	for i := 0; i+1 < len(md.Content); i += 2 {
		if isKey(md.Content[i], "generation") {
			return e.replaceScalar(md.Content[i+1], gen)
		}
	}
	k := md.Content[0]
	off, err := f.offset(k.Line, k.Column)
	if err != nil {
		return edit{}, e.errorf("metadata: %w", err)
	}
	if md.Style&yaml.FlowStyle != 0 {
		before := bytes.TrimRight(f.src[:off], " \t\n")
		if !bytes.HasSuffix(before, []byte("{")) {
			return edit{}, e.errorf("cannot insert generation into flow-style metadata at line %d", k.Line)
		}
		return edit{start: off, end: off, text: []byte("generation: " + gen + ", ")}, nil
	}
	indent := f.src[f.start(k.Line-1):off]
	if len(bytes.TrimLeft(indent, " ")) != 0 {
		return edit{}, e.errorf("first metadata key at line %d does not start its line", k.Line)
	}
	text := slices.Concat([]byte("generation: "+gen+"\n"), indent)
	return edit{start: off, end: off, text: text}, nil
}

// replaceScalar returns an edit replacing the source text of the single-line
// plain or quoted scalar n with text.
func (e *editor) replaceScalar(n *yaml.Node, text string) (edit, error) {
	fail := func() (edit, error) {
		return edit{}, e.errorf("cannot replace metadata.generation value at line %d", n.Line)
	}
	if n.Kind != yaml.ScalarNode || n.Value == "" || bytes.ContainsAny([]byte(n.Value), "\n\t") {
		return fail()
	}
	off, err := e.f.offset(n.Line, n.Column)
	if err != nil {
		return fail()
	}
	var raw string
	switch n.Style {
	case 0:
		raw = n.Value
	case yaml.SingleQuotedStyle:
		if bytes.ContainsRune([]byte(n.Value), '\'') {
			return fail()
		}
		raw = "'" + n.Value + "'"
	case yaml.DoubleQuotedStyle:
		if bytes.ContainsAny([]byte(n.Value), "\"\\") {
			return fail()
		}
		raw = `"` + n.Value + `"`
	default:
		return fail()
	}
	if !bytes.HasPrefix(e.f.src[off:], []byte(raw)) {
		return fail()
	}
	return edit{start: off, end: off + len(raw), text: []byte(text)}, nil
}

// verify decodes out and checks that, compared to the original documents
// orig, only the status and metadata.generation of the documents in want
// changed, and to what want says. It consumes orig.
func verify(orig []any, want map[int]docEdit, out []byte) error {
	docs, err := decodeNodes(out)
	if err != nil {
		return fmt.Errorf("%w: edited file does not parse: %w", errUnsafe, err)
	}
	if len(docs) != len(orig) {
		return fmt.Errorf("%w: edited file has %d documents instead of %d", errUnsafe, len(docs), len(orig))
	}
	for i, doc := range docs {
		v, err := decodeValue(doc)
		if err != nil {
			return fmt.Errorf("%w: decoding edited document %d: %w", errUnsafe, i+1, err)
		}
		w, edited := want[i]
		if !edited {
			if !equal(orig[i], v) {
				return fmt.Errorf("%w: edit changed document %d", errUnsafe, i+1)
			}
			continue
		}
		got, ok := lookup(v, "status")
		switch {
		case w.status.empty && ok:
			return fmt.Errorf("%w: document %d: status is still present after the edit", errUnsafe, i+1)
		case !w.status.empty && (!ok || !equal(w.status.value, got)):
			return fmt.Errorf("%w: document %d: edited status does not decode to the given status", errUnsafe, i+1)
		}
		md, _ := lookup(v, "metadata")
		if w.generation > 0 {
			g, _ := lookup(md, "generation")
			if !isInt(g, w.generation) {
				return fmt.Errorf("%w: document %d: edited metadata.generation is %v, not %d", errUnsafe, i+1, g, w.generation)
			}
		}
		remove(v, "status")
		remove(md, "generation")
		remove(orig[i], "status")
		origMD, _ := lookup(orig[i], "metadata")
		remove(origMD, "generation")
		if !equal(orig[i], v) {
			return fmt.Errorf("%w: document %d: edit changed more than status and metadata.generation", errUnsafe, i+1)
		}
	}
	return nil
}

func isInt(v any, want int64) bool {
	switch v := v.(type) {
	case int:
		return int64(v) == want
	case int64:
		return v == want
	case uint64:
		return want >= 0 && v == uint64(want)
	}
	return false
}

// mapEqual compares two decoded YAML mappings with equal.
func mapEqual[K comparable](x, y map[K]any) bool {
	if len(x) != len(y) {
		return false
	}
	for k, xv := range x {
		yv, ok := y[k]
		if !ok || !equal(xv, yv) {
			return false
		}
	}
	return true
}

// equal is reflect.DeepEqual for decoded YAML values, except that NaN equals
// NaN and times are compared with time.Time.Equal.
func equal(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		return ok && mapEqual(x, y)
	case map[any]any:
		y, ok := b.(map[any]any)
		return ok && mapEqual(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || (x != x && y != y))
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	}
	return reflect.DeepEqual(a, b)
}
