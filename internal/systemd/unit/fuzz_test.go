// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package unit

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// FuzzRender checks that whatever Render writes parses back, with
// go-systemd's parser and a model of systemd's unquoting below, into
// exactly the directives the spec asked for, and nothing else.
func FuzzRender(f *testing.F) {
	for _, s := range []string{
		"%n", "$HOME", "${HOME}", "a\nExecStartPre=/bin/evil", "\\", "\"", "'", ";", `\;`,
		"", " ", "a b", "100%", "a\\", "ü", "\xff", "\u0085", "\x7f", "\t", "\r\n[Service]",
		"#", "x=y", "[X-Evil]",
	} {
		f.Add(s, "/bin/echo", s, s, "KEY", s, "/srv/"+s, s, "X-Fuzz", "Directive", s)
	}
	f.Add("d", "/bin/echo", "a", "b", "K", "v", "/", "u", "Service", "MemoryMax", "200M")
	f.Add("d", "prog", "a", "b", "K", "v", "/", "u", "Unit", "Wants", "x.service")
	f.Fuzz(func(t *testing.T, desc, prog, arg1, arg2, envName, envValue, workDir, user, section, directive, value string) {
		spec := &v1alpha1.ModuleSpec{
			Description:      desc,
			Exec:             []string{prog, arg1, arg2},
			WorkingDirectory: workDir,
			User:             user,
			Environment:      map[string]string{envName: envValue, "FIXED": arg1},
			Type:             "simple",
			Restart:          "on-failure",
			RestartSec:       &metav1.Duration{Duration: time.Duration(len(arg1)) * 1234567},
			After:            []string{"network.target"},
			Extra:            map[string]map[string]v1alpha1.DirectiveValue{section: {directive: {value, arg2}}},
		}
		if out, err := Render("fuzz", spec); err == nil {
			checkRoundTrip(t, spec, out)
		}

		// Arguments and environment values are never refused, whatever
		// they hold, as long as they can be passed to a process at all.
		spec = &v1alpha1.ModuleSpec{
			Exec:        []string{"/bin/echo", desc, prog, arg1, arg2, value},
			Environment: map[string]string{"K": envValue},
		}
		out, err := Render("fuzz", spec)
		passable := !strings.Contains(desc+prog+arg1+arg2+value+envValue, "\x00") && utf8.ValidString(envValue)
		if passable && err != nil {
			t.Fatalf("Render refused argv %q, env %q: %v", spec.Exec, envValue, err)
		}
		if err == nil {
			checkRoundTrip(t, spec, out)
		}
	})
}

// directive is one line of a unit file, with its value decoded the way
// systemd decodes that directive.
type directive struct {
	Section, Name string
	Values        []string
}

// checkRoundTrip parses out and compares it with what spec asked for.
func checkRoundTrip(t *testing.T, spec *v1alpha1.ModuleSpec, out []byte) {
	t.Helper()
	if m, ok := IsManaged(out); !ok || m != "fuzz" {
		t.Errorf("IsManaged = %q, %v; want fuzz, true", m, ok)
	}
	opts, err := unit.DeserializeOptions(bytes.NewReader(out))
	if errors.Is(err, unit.ErrLineTooLong) {
		return // go-systemd's limit (2048), not systemd's (1 MiB)
	}
	if err != nil {
		t.Fatalf("DeserializeOptions: %v\n%s", err, out)
	}
	var got []directive
	for _, o := range opts {
		d, err := decode(o)
		if err != nil {
			t.Fatalf("decode %s: %v\n%s", o, err, out)
		}
		got = append(got, d)
	}
	if diff := cmp.Diff(intended(spec), got); diff != "" {
		t.Errorf("directives (-want +got):\n%s\nfile:\n%s", diff, out)
	}
}

// intended lists the directives spec asks for, in the order Render writes them.
func intended(spec *v1alpha1.ModuleSpec) []directive {
	var ds []directive
	add := func(sec, name string, vals ...string) {
		ds = append(ds, directive{sec, name, vals})
	}
	addText := func(sec, name, v string) {
		if v = strings.TrimSpace(v); v != "" {
			add(sec, name, v)
		}
	}
	addExtra := func(sec string) {
		dirs := spec.Extra[sec]
		for _, name := range slices.Sorted(maps.Keys(dirs)) {
			for _, v := range dirs[name] {
				add(sec, name, strings.TrimSpace(v))
			}
		}
	}
	addText("Unit", "Description", spec.Description)
	if len(spec.After) > 0 {
		add("Unit", "After", spec.After...)
	}
	addExtra("Unit")
	addText("Service", "Type", spec.Type)
	add("Service", "ExecStart", spec.Exec...)
	addText("Service", "WorkingDirectory", spec.WorkingDirectory)
	addText("Service", "User", spec.User)
	for _, k := range slices.Sorted(maps.Keys(spec.Environment)) {
		add("Service", "Environment", k+"="+spec.Environment[k])
	}
	addText("Service", "Restart", spec.Restart)
	if spec.RestartSec != nil {
		// Rounded up to whole microseconds.
		us := (spec.RestartSec.Duration + time.Microsecond - 1) / time.Microsecond
		add("Service", "RestartSec", (us * time.Microsecond).String())
	}
	addExtra("Service")
	if spec.Scope == "user" {
		add("Install", "WantedBy", "default.target")
	} else {
		add("Install", "WantedBy", "multi-user.target")
	}
	addExtra("Install")
	var xs []string
	for sec := range spec.Extra {
		if strings.HasPrefix(sec, "X-") {
			xs = append(xs, sec)
		}
	}
	slices.Sort(xs)
	for _, sec := range xs {
		addExtra(sec)
	}
	return ds
}

// decode reads o's value the way systemd reads that directive.
func decode(o *unit.UnitOption) (directive, error) {
	d := directive{Section: o.Section, Name: o.Name}
	var err error
	switch o.Section + "." + o.Name {
	case "Unit.Description", "Service.WorkingDirectory", "Service.User":
		var v string
		v, err = unspecify(o.Value)
		d.Values = []string{v}
	case "Unit.After":
		d.Values = strings.Fields(o.Value)
	case "Service.ExecStart":
		d.Values, err = splitWords(o.Value, true)
		for i := range d.Values {
			if err == nil {
				d.Values[i], err = unspecify(d.Values[i])
			}
			if err == nil {
				d.Values[i], err = undollar(d.Values[i])
			}
		}
	case "Service.Environment":
		d.Values, err = splitWords(o.Value, false)
		if err == nil && len(d.Values) != 1 {
			err = fmt.Errorf("%d assignments in one directive", len(d.Values))
		}
		if err == nil {
			d.Values[0], err = unspecify(d.Values[0])
		}
	case "Service.RestartSec":
		var dur time.Duration
		dur, err = time.ParseDuration(o.Value)
		d.Values = []string{dur.String()}
	default:
		d.Values = []string{o.Value}
	}
	return d, err
}

// splitWords splits s like systemd's extract_first_word with
// EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE, but strictly: unknown escapes and
// unbalanced quotes are errors rather than warnings. If command is set, an
// unquoted ";" word is an error too: ExecStart= takes it as the end of a
// command.
func splitWords(s string, command bool) ([]string, error) {
	const sep = " \t\n\r"
	isSep := func(i int) bool { return i == len(s) || strings.IndexByte(sep, s[i]) >= 0 }
	var words []string
	i := 0
	for {
		for i < len(s) && isSep(i) {
			i++
		}
		if i == len(s) {
			return words, nil
		}
		if command && (s[i] == ';' && isSep(i+1) || strings.HasPrefix(s[i:], `\;`) && isSep(i+2)) {
			return nil, fmt.Errorf("command separator at %d in %q", i, s)
		}
		var w []byte
		var quote byte
	word:
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\':
				b, n, err := cunescape(s[i+1:])
				if err != nil {
					return nil, fmt.Errorf("%w in %q", err, s)
				}
				w = append(w, b...)
				i += n
			case quote != 0 && c == quote:
				quote = 0
			case quote != 0:
				w = append(w, c)
			case c == '"' || c == '\'':
				quote = c
			case isSep(i):
				break word
			default:
				w = append(w, c)
			}
		}
		if quote != 0 {
			return nil, fmt.Errorf("unbalanced quotes in %q", s)
		}
		if command && len(words) == 0 && string(w) == ";" {
			return nil, fmt.Errorf("program is a command separator in %q", s)
		}
		words = append(words, string(w))
	}
}

// cunescape decodes the escape sequence after a backslash at the start of s
// like systemd's cunescape_one, returning the bytes and how many bytes of s
// it used.
func cunescape(s string) ([]byte, int, error) {
	if s == "" {
		return nil, 0, errors.New("trailing backslash")
	}
	if i := strings.IndexByte(`abfnrtv\"'s`, s[0]); i >= 0 {
		return []byte{"\a\b\f\n\r\t\v\\\"' "[i]}, 1, nil
	}
	hex := func(digits int) (uint64, error) {
		if len(s) < 1+digits {
			return 0, fmt.Errorf("short escape \\%s", s)
		}
		return strconv.ParseUint(s[1:1+digits], 16, 32)
	}
	switch s[0] {
	case 'x':
		v, err := hex(2)
		if err != nil || v == 0 {
			return nil, 0, fmt.Errorf("bad escape \\%.3s", s)
		}
		return []byte{byte(v)}, 3, nil
	case 'u', 'U':
		n := map[byte]int{'u': 4, 'U': 8}[s[0]]
		v, err := hex(n)
		if err != nil || v == 0 || !utf8.ValidRune(rune(v)) {
			return nil, 0, fmt.Errorf("bad escape \\%.9s", s)
		}
		return utf8.AppendRune(nil, rune(v)), 1 + n, nil
	case '0', '1', '2', '3':
		if len(s) < 3 {
			return nil, 0, fmt.Errorf("short escape \\%s", s)
		}
		v, err := strconv.ParseUint(s[:3], 8, 8)
		if err != nil || v == 0 {
			return nil, 0, fmt.Errorf("bad escape \\%.3s", s)
		}
		return []byte{byte(v)}, 3, nil
	}
	return nil, 0, fmt.Errorf("unknown escape \\%c", s[0])
}

// unspecify resolves specifiers; only %% is expected.
func unspecify(s string) (string, error) {
	return collapse(s, '%')
}

// undollar does ExecStart='s environment variable expansion; only $$ is
// expected.
func undollar(s string) (string, error) {
	return collapse(s, '$')
}

// collapse turns each doubled c in s into one c and refuses any single c.
func collapse(s string, c byte) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			if i+1 == len(s) || s[i+1] != c {
				return "", fmt.Errorf("lone %c at %d in %q would be expanded", c, i, s)
			}
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}
