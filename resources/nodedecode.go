// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxNodes bounds the work one document may cause, so alias bombs
// ("billion laughs") fail fast instead of exhausting memory.
const maxNodes = 200000

// maxDepth bounds nesting: with a recursive Go type, deep or self-referencing
// input would otherwise recurse (and build field paths) without end.
const maxDepth = 1000

// nodeDecoder decodes a yaml.v3 node tree into a Go value strictly, by the
// value's json tags: unknown and duplicate keys, wrong types and bad values
// are errors carrying the file, line and field path.
type nodeDecoder struct {
	file  string
	errs  []*Error
	nodes int
	depth int
	// anchors holds the anchored nodes being decoded, to reject an alias
	// inside an anchor that refers to that anchor.
	anchors map[*yaml.Node]bool
}

func (d *nodeDecoder) fail(n *yaml.Node, path, format string, args ...any) {
	if len(d.errs) >= 20 {
		return // enough to fix; the rest usually follows from the first
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Field: path, Message: fmt.Sprintf(format, args...)})
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

func (d *nodeDecoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.nodes++
	if d.nodes > maxNodes {
		if d.nodes == maxNodes+1 {
			d.fail(n, path, "document too large or too many aliases")
		}
		return
	}
	if d.depth >= maxDepth {
		d.fail(n, path, "nested too deeply")
		return
	}
	d.depth++
	defer func() { d.depth-- }()
	if n.Kind == yaml.AliasNode {
		if d.anchors[n.Alias] {
			d.fail(n, path, "alias *%s refers to its own anchor", n.Value)
			return
		}
		d.decode(n.Alias, v, path)
		return
	}
	if n.Anchor != "" && !d.anchors[n] {
		if d.anchors == nil {
			d.anchors = map[*yaml.Node]bool{}
		}
		d.anchors[n] = true
		defer delete(d.anchors, n)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		v.SetZero()
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
		return
	}
	if want, ok := scalarTypes[v.Type()]; ok && !want.accepts(n) {
		d.fail(n, path, "%s", want.complaint(n))
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(jsonUnmarshaler) {
		var generic any
		if err := n.Decode(&generic); err != nil {
			d.fail(n, path, "%v", err)
			return
		}
		b, err := json.Marshal(jsonable(generic))
		if err == nil {
			err = v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(b)
		}
		if err != nil {
			d.fail(n, path, "%s", unmarshalMessage(err))
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "must be a mapping, not %s", describe(n))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			kp := path + "[" + k.Value + "]"
			if k.Kind != yaml.ScalarNode {
				d.fail(k, path, "keys must be strings")
				continue
			}
			if seen[k.Value] {
				d.fail(k, kp, "duplicate key")
				continue
			}
			seen[k.Value] = true
			ev := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, ev, kp)
			v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), ev)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "must be a list, not %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "must be a string, not %s", describe(n))
			return
		}
		if n.Tag != "!!str" && n.Tag != "!!timestamp" && n.Tag != "!!binary" {
			d.fail(n, path, "must be a string, not %s (quote it: %q)", describe(n), n.Value)
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, path, "must be true or false, not %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
			d.fail(n, path, "must be an integer, not %s", describe(n))
			return
		}
		if v.OverflowInt(i) {
			d.fail(n, path, "%d is out of range", i)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var u uint64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&u) != nil {
			d.fail(n, path, "must be a non-negative integer, not %s", describe(n))
			return
		}
		if v.OverflowUint(u) {
			d.fail(n, path, "%d is out of range", u)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!float" && n.Tag != "!!int") || err != nil || math.IsNaN(f) {
			d.fail(n, path, "must be a number, not %s", describe(n))
			return
		}
		v.SetFloat(f)
	case reflect.Interface:
		var generic any
		if err := n.Decode(&generic); err != nil {
			d.fail(n, path, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(jsonable(generic)))
	default:
		d.fail(n, path, "cannot decode into %s", v.Type())
	}
}

func (d *nodeDecoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "must be a mapping, not %s", describe(n))
		return
	}
	fields := structFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fp := k.Value
		if path != "" {
			fp = path + "." + k.Value
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "keys must be strings")
			continue
		}
		if k.Value == "<<" {
			d.fail(k, fp, "merge keys (<<) are not supported")
			continue
		}
		if seen[k.Value] {
			d.fail(k, fp, "duplicate key")
			continue
		}
		seen[k.Value] = true
		idx, ok := fields[k.Value]
		if !ok {
			d.fail(k, fp, "unknown field%s", suggest(k.Value, fields))
			continue
		}
		d.decode(val, v.FieldByIndex(idx), fp)
	}
}

// scalarType describes a type written as one string in YAML, such as a
// duration, for messages that say what was expected in the user's terms
// instead of Go's ("json: cannot unmarshal array into Go value of type
// string").
type scalarType struct {
	// want is what a value looks like: `a duration such as "10s"`.
	want string
	// parse checks a string value; nil accepts any string.
	parse func(string) error
	// fromNumber suggests the string form of a bare number ("5" -> "5s").
	fromNumber func(string) string
}

var scalarTypes = map[reflect.Type]scalarType{
	reflect.TypeFor[metav1.Duration](): {
		want: `a duration such as "10s" or "1m30s"`,
		parse: func(s string) error {
			_, err := time.ParseDuration(s)
			return err
		},
		fromNumber: func(n string) string { return n + "s" },
	},
	reflect.TypeFor[metav1.Time](): {
		want: `a time such as "2026-11-21T10:00:00Z" (RFC 3339)`,
		parse: func(s string) error {
			_, err := time.Parse(time.RFC3339, s)
			return err
		},
	},
}

// accepts reports whether n is a well-formed value of the type.
func (t scalarType) accepts(n *yaml.Node) bool {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!int" || n.Tag == "!!float" || n.Tag == "!!bool" {
		return false
	}
	return t.parse == nil || t.parse(n.Value) == nil
}

// complaint says what is wrong with n.
func (t scalarType) complaint(n *yaml.Node) string {
	got := describe(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		got = strconv.Quote(n.Value)
	}
	msg := fmt.Sprintf("want %s, got %s", t.want, got)
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") && t.fromNumber != nil {
		msg += fmt.Sprintf(" (write %q)", t.fromNumber(n.Value))
	}
	return msg
}

// unmarshalMessage words an UnmarshalJSON error of a field's type without
// Go's type names.
func unmarshalMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("want a %s, got %s", jsonKind(te.Type), jsonValueName(te.Value))
	}
	return strings.TrimPrefix(strings.TrimPrefix(err.Error(), "json: "), "time: ")
}

// jsonKind names a Go type as the JSON value it decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map, reflect.Struct:
		return "mapping"
	}
	return "number"
}

// jsonValueName turns encoding/json's value names ("array", "object")
// into YAML's words.
func jsonValueName(v string) string {
	switch v {
	case "array":
		return "a list"
	case "object":
		return "a mapping"
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	}
	return "a " + v
}

// describe names a node's type for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!int":
		return "the number " + n.Value
	case "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	case "!!str":
		return strconv.Quote(n.Value)
	}
	return n.Value
}

// suggest proposes a close known field name for a typo.
func suggest(name string, fields map[string][]int) string {
	best, bestD := "", 3
	for f := range fields {
		if dd := editDistance(strings.ToLower(name), strings.ToLower(f)); dd < bestD {
			best, bestD = f, dd
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

var fieldCache sync.Map // reflect.Type -> map[string][]int

// structFields maps json names to field index paths, flattening embedded
// structs that have no json name (",inline").
func structFields(t reflect.Type) map[string][]int {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string][]int)
	}
	m := map[string][]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, idx := range structFields(f.Type) {
				m[k] = append([]int{i}, idx...)
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = []int{i}
	}
	fieldCache.Store(t, m)
	return m
}

// jsonable converts yaml.v3's generic values into ones encoding/json accepts.
func jsonable(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = jsonable(e)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = jsonable(e)
		}
		return t
	}
	return v
}
