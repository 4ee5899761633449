// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package yamlnode holds the few operations on yaml.v3 node trees that the
// resource decoder, the API writer and the MQTT bridge share: look up and
// delete a key of a mapping, read a scalar, and drop JSON's styling.
package yamlnode

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// Get returns the value node of key in the mapping m, or nil (also when m
// is nil or not a mapping).
func Get(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// Delete removes key and its value from the mapping m, if present.
func Delete(m *yaml.Node, key string) {
	if m == nil || m.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// Scalar returns the value of a scalar node, or "" for anything else.
func Scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// Plain drops JSON's styling below n: mappings in block style, strings
// quoted only where YAML needs it (the encoder still quotes "100" so it
// stays a string).
func Plain(n *yaml.Node) {
	switch {
	case n.Kind == yaml.MappingNode:
		n.Style = 0
	case n.Kind == yaml.ScalarNode && n.Style == yaml.DoubleQuotedStyle && !strings.ContainsAny(n.Value, "\n\t"):
		n.Style = 0
	}
	for _, c := range n.Content {
		Plain(c)
	}
}
