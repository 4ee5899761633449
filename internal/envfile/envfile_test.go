// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package envfile

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	src := "# database\n\nDB_HOST=db.example.net\nexport DB_USER = app\r\nDB_PASSWORD='p@ss w0rd #1'\nGREETING=\"hello\\n\\\"world\\\"\"\n; old style comment\nEMPTY=\n  INDENTED=yes  \n"
	got, err := Parse("db.env", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"DB_HOST=db.example.net", "DB_USER=app", "DB_PASSWORD=p@ss w0rd #1", "GREETING=hello\n\"world\"", "EMPTY=", "INDENTED=yes"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	for src, want := range map[string]string{
		"just words\n":               "db.env:1: want NAME=VALUE",
		"A=1\n1BAD=x\n":              `db.env:2: "1BAD" is not a variable name`,
		"PASS='secret\n":             "db.env:1: PASS: unterminated or badly quoted value",
		"PASS=\"secret\n":            "db.env:1: PASS: unterminated double-quoted value",
		"PASS=\"secret\" trailing\n": "db.env:1: PASS: text after the closing quote",
		"A=\x00":                     "contains a NUL byte",
		"A=\xff":                     "not valid UTF-8",
	} {
		_, err := Parse("db.env", []byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want %q", src, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error shows the value: %v", err)
		}
	}
}

// FuzzParse: any input gives entries or an error, never a panic; entries
// are NAME=VALUE with a valid name, and an error never quotes a value.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"A=1\n", "export B='x y'\n", "C=\"a\\nb\"\n# c\n", "bad\n", "D=\"unterminated\n", "E='x'y'\n", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := Parse("f", data)
		if err != nil {
			return
		}
		for _, e := range entries {
			name, _, ok := strings.Cut(e, "=")
			if !ok || !nameRE.MatchString(name) {
				t.Fatalf("bad entry %q", e)
			}
		}
	})
}
