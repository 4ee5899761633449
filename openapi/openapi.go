// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package openapi describes the kinds as OpenAPI schemas, built from the
// Go types by reflection and described by their doc comments (read from
// the package's own source, embedded): the OpenAPI v3 documents kubectl
// explain and kubectl's validation ask the daemon for.
package openapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"reflect"
	"strings"
	"sync"
	"time"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	protobuf "google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// Schema is an OpenAPI v3 schema (the subset the kinds need).
type Schema struct {
	Type                 string             `json:"type,omitempty"`
	Format               string             `json:"format,omitempty"`
	Description          string             `json:"description,omitempty"`
	Properties           map[string]*Schema `json:"properties,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
	AdditionalProperties *Schema            `json:"additionalProperties,omitempty"`
	PreserveUnknown      bool               `json:"x-kubernetes-preserve-unknown-fields,omitempty"`
	GVK                  []GVK              `json:"x-kubernetes-group-version-kind,omitempty"`
}

// GVK names a kind in x-kubernetes-group-version-kind.
type GVK struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

// SchemaName is the name of a kind's schema in a document's components
// ("dev.reconciled.v1alpha1.Process", as Kubernetes names them).
func SchemaName(kind string) string { return "dev.reconciled." + v1alpha1.Version + "." + kind }

var (
	once    sync.Once
	schemas map[string]*Schema
)

// Kinds returns the schema of every kind, by kind.
func Kinds() map[string]*Schema {
	once.Do(func() {
		d := readDocs()
		schemas = map[string]*Schema{}
		for _, k := range v1alpha1.Kinds {
			t := reflect.TypeOf(k.New()).Elem()
			s := d.schemaOf(t, map[reflect.Type]bool{})
			s.GVK = []GVK{{Group: v1alpha1.Group, Version: v1alpha1.Version, Kind: k.Kind}}
			schemas[k.Kind] = s
		}
	})
	return schemas
}

// JSON is Document encoded, and a hash of it (clients cache the document
// by it); both made once: the kinds do not change while the daemon runs.
func JSON() (doc []byte, hash string) {
	jsonOnce.Do(func() {
		b, err := json.Marshal(Document())
		if err != nil {
			panic(err) // plain maps and strings: cannot fail
		}
		h := sha256.Sum256(b)
		docJSON, docHash = b, strings.ToUpper(hex.EncodeToString(h[:16]))
	})
	return docJSON, docHash
}

var (
	jsonOnce sync.Once
	docJSON  []byte
	docHash  string
)

// Document is the OpenAPI v3 document of the group version, as
// /openapi/v3/apis/reconciled.dev/v1alpha1 serves it.
func Document() map[string]any {
	comps := map[string]*Schema{}
	for _, k := range v1alpha1.Kinds {
		comps[SchemaName(k.Kind)] = Kinds()[k.Kind]
	}
	return map[string]any{
		"openapi":    "3.0.0",
		"info":       map[string]string{"title": "reconciled", "version": v1alpha1.Version},
		"paths":      paths(false),
		"components": map[string]any{"schemas": comps},
	}
}

// paths are the operations on each kind, in OpenAPI v3 or (v2) Swagger
// form: they differ in how responses and parameters name their schemas.
func paths(v2 bool) map[string]any {
	paths := map[string]any{}
	for _, k := range v1alpha1.Kinds {
		gvk := GVK{Group: v1alpha1.Group, Version: v1alpha1.Version, Kind: k.Kind}
		var response, param map[string]any
		if v2 {
			response = map[string]any{"description": "OK", "schema": map[string]string{"$ref": "#/definitions/" + SchemaName(k.Kind)}}
			param = map[string]any{"name": "fieldValidation", "in": "query", "type": "string", "uniqueItems": true}
		} else {
			response = map[string]any{"description": "OK",
				"content": map[string]any{"application/json": map[string]any{"schema": map[string]string{"$ref": "#/components/schemas/" + SchemaName(k.Kind)}}}}
			param = map[string]any{"name": "fieldValidation", "in": "query", "schema": map[string]string{"type": "string"}}
		}
		op := func(action string, validated bool) map[string]any {
			o := map[string]any{
				"x-kubernetes-action":             action,
				"x-kubernetes-group-version-kind": gvk,
				"responses":                       map[string]any{"200": response},
			}
			if validated {
				// The server validates what it is sent (unknown fields
				// too): kubectl leaves validation to it.
				o["parameters"] = []map[string]any{param}
			}
			return o
		}
		base := "/apis/" + v1alpha1.APIVersion + "/" + k.Plural
		paths[base] = map[string]any{"get": op("list", false), "post": op("post", true)}
		paths[base+"/{name}"] = map[string]any{"get": op("get", false), "put": op("put", true), "patch": op("patch", true), "delete": op("delete", false)}
	}
	return paths
}

// V2 is the OpenAPI v2 (Swagger) document of the kinds, as /openapi/v2
// serves it to clients that still read it (kubectl explain --output
// plaintext-openapiv2, older tools): the same schemas and operations as
// Document, as JSON and as the protocol buffer clients ask for; both made
// once.
func V2() (doc, proto []byte) {
	v2Once.Do(func() {
		defs := map[string]*Schema{}
		for _, k := range v1alpha1.Kinds {
			defs[SchemaName(k.Kind)] = Kinds()[k.Kind]
		}
		b, err := json.Marshal(map[string]any{
			"swagger":     "2.0",
			"info":        map[string]string{"title": "reconciled", "version": v1alpha1.Version},
			"paths":       paths(true),
			"definitions": defs,
		})
		if err != nil {
			panic(err) // plain maps and strings: cannot fail
		}
		d, err := openapiv2.ParseDocument(b)
		if err != nil {
			panic(fmt.Sprintf("the OpenAPI v2 document does not parse: %v", err)) // TestV2 parses it
		}
		p, err := protobuf.Marshal(d)
		if err != nil {
			panic(err)
		}
		v2JSON, v2Proto = b, p
	})
	return v2JSON, v2Proto
}

var (
	v2Once          sync.Once
	v2JSON, v2Proto []byte
)

// docs are the doc comments of the package's types ("Link") and fields
// ("LinkSpec.Interval").
type docs map[string]string

var (
	timeType     = reflect.TypeOf(metav1.Time{})
	durationType = reflect.TypeOf(metav1.Duration{})
	stdTime      = reflect.TypeOf(time.Time{})
	// jsonUnmarshaler is implemented by types that decode themselves.
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
)

// schemaOf builds the schema of t.
func (d docs) schemaOf(t reflect.Type, seen map[reflect.Type]bool) *Schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case timeType, stdTime:
		return &Schema{Type: "string", Format: "date-time"}
	case durationType:
		return &Schema{Type: "string", Description: "A duration such as 30s, 5m or 1h30m."}
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		// It decodes itself (a scalar or a list, say): its shape is its
		// own; the daemon validates it.
		return &Schema{PreserveUnknown: true}
	}
	switch t.Kind() {
	case reflect.String:
		return &Schema{Type: "string"}
	case reflect.Bool:
		return &Schema{Type: "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		f := "int64"
		if t.Bits() <= 32 {
			f = "int32"
		}
		return &Schema{Type: "integer", Format: f}
	case reflect.Float32, reflect.Float64:
		return &Schema{Type: "number", Format: "double"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return &Schema{Type: "string", Format: "byte"}
		}
		return &Schema{Type: "array", Items: d.schemaOf(t.Elem(), seen)}
	case reflect.Map:
		return &Schema{Type: "object", AdditionalProperties: d.schemaOf(t.Elem(), seen)}
	case reflect.Interface:
		return &Schema{PreserveUnknown: true}
	case reflect.Struct:
		if seen[t] {
			return &Schema{Type: "object", PreserveUnknown: true}
		}
		seen[t] = true
		defer delete(seen, t)
		s := &Schema{Type: "object", Description: d[t.Name()], Properties: map[string]*Schema{}}
		d.fields(t, s, seen)
		return s
	}
	return &Schema{PreserveUnknown: true}
}

// fields adds the JSON fields of struct t to s (inline ones in place).
func (d docs) fields(t reflect.Type, s *Schema, seen map[reflect.Type]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && (name == "" || strings.Contains(","+opts+",", ",inline,")) && ft.Kind() == reflect.Struct {
			d.fields(ft, s, seen)
			continue
		}
		if name == "" {
			name = f.Name
		}
		fs := d.schemaOf(f.Type, seen)
		if doc := d[t.Name()+"."+f.Name]; doc != "" {
			c := *fs
			c.Description = doc
			fs = &c
		}
		s.Properties[name] = fs
	}
}

// readDocs reads the doc comments of the kinds' source.
func readDocs() docs {
	d := docs{}
	fset := token.NewFileSet()
	fs.WalkDir(v1alpha1.Sources, ".", func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		src, err := fs.ReadFile(v1alpha1.Sources, path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
		if err != nil {
			return nil // a file that does not parse gives no docs
		}
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, spec := range g.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(g.Specs) == 1 {
					doc = g.Doc
				}
				d[ts.Name.Name] = clean(doc.Text())
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, field := range st.Fields.List {
					text := field.Doc.Text()
					if text == "" {
						text = field.Comment.Text()
					}
					for _, n := range field.Names {
						d[ts.Name.Name+"."+n.Name] = clean(text)
					}
				}
			}
		}
		return nil
	})
	return d
}

// clean joins a comment's lines into one paragraph.
func clean(s string) string { return strings.Join(strings.Fields(s), " ") }
