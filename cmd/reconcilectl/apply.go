// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/apiserver"
	"github.com/reconciled/reconciled/resources"
)

func newApply(g *globals) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Create or update resources through the daemon, which writes them into its --dir (under api/)",
		Long: `Create or update resources through the daemon. Every document is checked
first, as validate does; if any is invalid nothing is sent. The daemon writes
each resource into <dir>/api/<kind>-<name>.yaml, where the controllers pick it
up like any other file. Resources defined in other files (a git checkout) are
refused: change them there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return usagef("apply needs -f FILE, a folder, or - for standard input")
			}
			docs, err := readDocuments(g, files)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			for _, d := range docs {
				ki, _ := v1alpha1.LookupKind(d.kind)
				path := apiserver.BasePath + "/" + ki.Plural + "/" + url.PathEscape(d.name)
				resp, err := c.send(cmd.Context(), http.MethodPut, path, bytes.NewReader(d.yaml))
				if err != nil {
					return fmt.Errorf("%s: %s/%s: %w", d.where, ki.Singular, d.name, err)
				}
				var st struct{ Message string }
				json.NewDecoder(resp.Body).Decode(&st)
				resp.Body.Close()
				fmt.Fprintln(g.out, st.Message)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, folder or - (standard input) with resources; repeatable")
	return cmd
}

func newDelete(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete KIND/NAME",
		Short: "Delete a resource that was created with apply",
		RunE: func(cmd *cobra.Command, args []string) error {
			ki, name, err := parseRef(args)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), http.MethodDelete, apiserver.BasePath+"/"+ki.Plural+"/"+url.PathEscape(name))
			if err != nil {
				return err
			}
			resp.Body.Close()
			fmt.Fprintf(g.out, "%s/%s deleted\n", ki.Singular, name)
			return nil
		},
	}
}

// document is one resource to send.
type document struct {
	kind, name, where string
	yaml              []byte
}

// readDocuments reads and checks every document of the given files; it
// prints every problem and fails when there is any.
func readDocuments(g *globals, args []string) ([]document, error) {
	var out []document
	bad := 0
	for _, a := range args {
		var paths []string
		if a == "-" {
			paths = []string{"-"}
		} else {
			var err error
			if paths, err = collectFiles([]string{a}); err != nil {
				return nil, err
			}
		}
		for _, p := range paths {
			var data []byte
			var err error
			name := p
			if p == "-" {
				name = "<stdin>"
				data, err = io.ReadAll(os.Stdin)
			} else {
				data, err = os.ReadFile(p)
			}
			if err != nil {
				return nil, err
			}
			docs, err := resources.DecodeFile(name, data)
			if err != nil {
				fmt.Fprintln(g.out, err)
				bad++
				continue
			}
			raw, err := splitDocuments(data)
			if err != nil || len(raw) != len(docs) {
				return nil, fmt.Errorf("%s: cannot split the documents: %v", name, err)
			}
			for i, d := range docs {
				for _, e := range d.Errs {
					fmt.Fprintln(g.out, e)
				}
				if len(d.Errs) > 0 {
					bad++
					continue
				}
				out = append(out, document{kind: d.Kind, name: d.Name, where: fmt.Sprintf("%s:%d", d.File, d.Line), yaml: raw[i]})
			}
		}
	}
	if bad > 0 {
		fmt.Fprintf(g.errOut, "%d invalid resources; nothing was applied\n", bad)
		return nil, exitError{1}
	}
	if len(out) == 0 {
		return nil, errors.New("no resources found")
	}
	return out, nil
}

// splitDocuments returns each non-empty YAML document of data on its own,
// comments kept, in the order and with the skipping rules of DecodeFile.
func splitDocuments(data []byte) ([][]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out [][]byte
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			continue
		}
		b, err := yaml.Marshal(&n)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
}
