// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package envfile parses environment files (Process spec.envFrom): one
// KEY=VALUE per line, as systemd's EnvironmentFile= and docker's
// --env-file take them, so that secrets need not sit in resource files.
//
// Blank lines and lines starting with # or ; are ignored; "export " before
// a name is allowed (files shared with shell scripts). A value may be
// 'single-quoted' (taken literally) or "double-quoted" (with \", \\, \n,
// \t and \$ escapes); an unquoted value runs to the end of the line with
// surrounding blanks removed. Values never continue on the next line.
// Errors name the file and line, never the value (it may be a secret).
package envfile

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// nameRE is what a variable name may be (POSIX shell names).
var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Parse returns the KEY=VALUE entries of an environment file's content, in
// file order (a name set twice keeps its last value when passed to a
// program). file names the file in errors.
func Parse(file string, data []byte) ([]string, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%s: not valid UTF-8", file)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, fmt.Errorf("%s: contains a NUL byte", file)
	}
	var out []string
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		t := strings.TrimLeft(line, " \t")
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		t = strings.TrimPrefix(t, "export ")
		name, value, ok := strings.Cut(t, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want NAME=VALUE", file, n)
		}
		name = strings.TrimRight(name, " \t")
		if !nameRE.MatchString(name) {
			return nil, fmt.Errorf("%s:%d: %q is not a variable name ([A-Za-z_][A-Za-z0-9_]*)", file, n, name)
		}
		v, err := unquote(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", file, n, name, err)
		}
		out = append(out, name+"="+v)
	}
	return out, nil
}

// unquote returns the value of an unquoted, single- or double-quoted word.
func unquote(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	switch v[0] {
	case '\'':
		if len(v) < 2 || v[len(v)-1] != '\'' || strings.Contains(v[1:len(v)-1], "'") {
			return "", fmt.Errorf("unterminated or badly quoted value (quote with '...' as a whole)")
		}
		return v[1 : len(v)-1], nil
	case '"':
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			c := v[i]
			switch {
			case c == '"':
				if i != len(v)-1 {
					return "", fmt.Errorf("text after the closing quote")
				}
				return b.String(), nil
			case c == '\\' && i+1 < len(v):
				i++
				switch v[i] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case '"', '\\', '$', '`':
					b.WriteByte(v[i])
				default:
					b.WriteByte('\\')
					b.WriteByte(v[i])
				}
			default:
				b.WriteByte(c)
			}
		}
		return "", fmt.Errorf("unterminated double-quoted value")
	}
	return v, nil
}
