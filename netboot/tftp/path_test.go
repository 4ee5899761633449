// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package tftp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	tests := map[string]struct {
		req, want string // want "" means refused
	}{
		"plain":              {req: "start4.elf", want: "start4.elf"},
		"nested":             {req: "abcdef01/start4.elf", want: "abcdef01/start4.elf"},
		"dot prefix":         {req: "./start4.elf", want: "start4.elf"},
		"double slash":       {req: "a//b", want: "a/b"},
		"dots inside names":  {req: "a..b/..c/d..", want: "a..b/..c/d.."},
		"hidden file":        {req: ".config", want: ".config"},
		"spaces and colon":   {req: "pxelinux.cfg/01-aa:bb c", want: "pxelinux.cfg/01-aa:bb c"},
		"utf-8":              {req: "bootfiles/ÿ€.bin", want: "bootfiles/ÿ€.bin"},
		"empty":              {req: ""},
		"dot":                {req: "."},
		"dot slash":          {req: "./"},
		"only slashes":       {req: "//"},
		"dotdot":             {req: ".."},
		"dotdot file":        {req: "../etc/passwd"},
		"dotdot middle":      {req: "a/../b"},
		"dotdot end":         {req: "a/.."},
		"many dotdot":        {req: "a/b/../../../../etc/shadow"},
		"absolute":           {req: "/etc/passwd"},
		"absolute double":    {req: "//etc/passwd"},
		"trailing slash":     {req: "boot/"},
		"backslash":          {req: `..\..\windows`},
		"backslash name":     {req: `a\b`},
		"nul":                {req: "start4.elf\x00../../etc/passwd"},
		"newline":            {req: "a\nb"},
		"tab":                {req: "a\tb"},
		"del":                {req: "a\x7f"},
		"c1 control":         {req: "a\u0085b"},
		"invalid utf8":       {req: "a\xffb"},
		"too long":           {req: strings.Repeat("a", MaxPathLen+1)},
		"longest accepted":   {req: strings.Repeat("a", MaxPathLen), want: strings.Repeat("a", MaxPathLen)},
		"encoded stays text": {req: "%2e%2e/etc", want: "%2e%2e/etc"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := CleanPath(tc.req)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("CleanPath(%q) = %q, want refused", tc.req, got)
				}
				if !errors.Is(err, ErrInvalidPath) {
					t.Fatalf("error %v does not wrap ErrInvalidPath", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CleanPath(%q) = %q, %v; want %q", tc.req, got, err, tc.want)
			}
		})
	}
}

// FuzzCleanPath checks that an accepted path is well formed and that no
// request, whatever its text, opens a file outside the root through the
// server's lookup (per-Pi folder included), the symlinks of newFixture
// notwithstanding.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{
		"start4.elf", "boot/kernel8.img", testSerial + "/cmdline.txt", "cmdline.txt",
		"..", "../secret.txt", "../../../../../../etc/passwd", "/etc/passwd", "//etc/passwd",
		"a/../../secret.txt", "boot/../../secret.txt", "./../secret.txt", ".../secret.txt",
		`..\secret.txt`, `\etc\passwd`, "C:\\Windows", "start4.elf\x00/../../secret.txt",
		"escape-rel", "escape-abs", "escape-dir/f", "etc/passwd", "etc/../../secret.txt",
		"kernel-link", "boot/up-link", "loop", "dangling", "fifo", testSerial + "/start4.elf",
		"%2e%2e/secret.txt", "..%2fsecret.txt", "\u2025/secret.txt", "./", ".", "", "/",
		"boot/", "a//b", strings.Repeat("../", 200) + "etc/passwd",
	} {
		f.Add(s)
	}
	fx := newFixture(f)
	realRoot, err := filepath.EvalSymlinks(fx.root)
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(Options{Addr: "127.0.0.1:0", Root: fx.root,
		Serial: func(net.IP) (string, bool) { return testSerial, true }})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	remote := net.IPv4(10, 77, 0, 10)

	f.Fuzz(func(t *testing.T, req string) {
		p, err := CleanPath(req)
		if err == nil {
			if !fs.ValidPath(p) || p == "." || !filepath.IsLocal(p) {
				t.Fatalf("CleanPath(%q) = %q: not a valid local path", req, p)
			}
			if strings.ContainsAny(p, "\\\x00") || len(p) > MaxPathLen {
				t.Fatalf("CleanPath(%q) = %q: forbidden byte or too long", req, p)
			}
			for _, e := range strings.Split(p, "/") {
				if e == ".." || e == "." || e == "" {
					t.Fatalf("CleanPath(%q) = %q: element %q", req, p, e)
				}
			}
			if again, err := CleanPath(p); err != nil || again != p {
				t.Fatalf("CleanPath(%q) = %q, but CleanPath(%q) = %q, %v", req, p, p, again, err)
			}
		}
		file, name, err := s.open(remote, req)
		if err != nil {
			if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrAccess) {
				t.Fatalf("open(%q): error %v wraps neither ErrNotFound nor ErrAccess", req, err)
			}
			return
		}
		defer file.Close()
		if p == "" {
			t.Fatalf("open(%q) served %s though CleanPath refused it", req, name)
		}
		target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", file.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(target, realRoot+string(filepath.Separator)) {
			t.Fatalf("open(%q) opened %s, outside the root %s", req, target, realRoot)
		}
		data, err := io.ReadAll(io.LimitReader(file, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(secretText)) {
			t.Fatalf("open(%q) served the secret", req)
		}
	})
}
