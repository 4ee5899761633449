// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package unit

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// commandLine writes argv as the value of ExecStart=.
func commandLine(argv []string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("no program to run")
	}
	if err := checkProgram(argv[0]); err != nil {
		return "", err
	}
	words := make([]string, len(argv))
	for i, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return "", fmt.Errorf("argument %d contains NUL", i)
		}
		words[i] = quote(a, true)
	}
	return strings.Join(words, " "), nil
}

// checkProgram applies systemd's rules for the program of ExecStart=, which
// it takes from the first word after unquoting: prefix characters there
// change its meaning whether quoted or not, and it must be "safe" (no
// quotes, backslashes or control characters). `$` is refused because
// systemd expands variables in argv[0] but not in the path it executes.
func checkProgram(p string) error {
	switch {
	case p == "":
		return errors.New("program is empty")
	case strings.IndexByte("-@:+!|", p[0]) >= 0:
		return fmt.Errorf("program %q: must not start with any of -@:+!| (systemd reads them as prefixes)", p)
	case strings.ContainsAny(p, "\"'\\$"):
		return fmt.Errorf("program %q: must not contain quotes, backslashes or $", p)
	case strings.ContainsFunc(p, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return fmt.Errorf("program %q: must not contain control characters", p)
	case !utf8.ValidString(p):
		return fmt.Errorf("program %q: must be valid UTF-8", p)
	case strings.HasSuffix(p, "/"):
		return fmt.Errorf("program %q: must not end in /", p)
	case p[0] != '/' && (strings.Contains(p, "/") || p == "." || p == ".." || p == ";"):
		return fmt.Errorf("program %q: must be an absolute path or a bare file name", p)
	}
	return nil
}

// assignment writes name=value as the value of Environment=.
func assignment(name, value string) (string, error) {
	if !envNameRE.MatchString(name) {
		return "", fmt.Errorf("variable name %q: must match [A-Za-z_][A-Za-z0-9_]*", name)
	}
	if !utf8.ValidString(value) || strings.IndexByte(value, 0) >= 0 {
		return "", fmt.Errorf("variable %s: value must be UTF-8 without NUL", name)
	}
	return quote(name+"="+value, false), nil
}

// safeByte reports whether c can appear in a word without quotes.
func safeByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("_@%+=:,./$-", c) >= 0
}

// quote writes s as one word for systemd's extract_first_word with
// EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE, followed by specifier expansion and,
// if dollars, environment variable expansion. s must not contain NUL.
func quote(s string, dollars bool) string {
	var b strings.Builder
	plain := s != ""
	for i := 0; i < len(s); {
		c := s[i]
		if !safeByte(c) {
			plain = false
		}
		switch {
		case c == '%':
			b.WriteString("%%")
		case c == '$' && dollars:
			b.WriteString("$$")
		case c == '\\':
			b.WriteString(`\\`)
		case c == '"':
			b.WriteString(`\"`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < ' ' || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 || r >= 0x80 && r <= 0x9f {
				// Not UTF-8, or a C1 control character: write the bytes.
				for _, c := range []byte(s[i : i+n]) {
					fmt.Fprintf(&b, `\x%02x`, c)
				}
			} else {
				b.WriteString(s[i : i+n])
			}
			i += n
			continue
		default:
			b.WriteByte(c)
		}
		i++
	}
	if plain {
		return b.String()
	}
	return `"` + b.String() + `"`
}
