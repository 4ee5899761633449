// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package unit renders the systemd unit file of a Module and recognises the
// unit files it wrote.
//
// Every value is written so that systemd reads back exactly what the spec
// says, and so that no value can end its line early or continue it onto the
// next one. Leading and trailing white space of a value is dropped, as
// systemd itself does. The rules, per kind of value:
//
//   - ExecStart= (systemd.service(5), "Command lines"): each argument is one
//     word. A word that is empty or holds anything but [A-Za-z0-9_@%+=:,./$-]
//     is put in double quotes. Inside a word, `\` and `"` are written `\\`
//     and `\"`; newline, tab and carriage return are written `\n`, `\t`,
//     `\r`; other control characters (C0, DEL, C1) and bytes that are not
//     UTF-8 are written `\xNN`. `%` is written `%%` so that systemd does not
//     expand specifiers, and `$` is written `$$` so that it does not expand
//     environment variables. The program (exec[0]) must be an absolute path
//     or a bare file name that systemd looks up in its search path; it must
//     not start with one of systemd's prefix characters (-@:+!|), contain
//     quotes, backslashes, `$` or control characters, or end in `/`.
//   - Environment= (systemd.exec(5)): one directive per variable, in sorted
//     order, quoted like an ExecStart= word except that `$` stays as it is
//     (it means nothing there). Names must be [A-Za-z_][A-Za-z0-9_]*, values
//     must be UTF-8: systemd silently drops other assignments.
//   - Description=, WorkingDirectory=, User=: written verbatim with `%`
//     doubled. Systemd does not unquote these, so they must not hold control
//     characters (a newline would start a new directive) or end in `\` (which
//     would continue the line).
//   - Type=, Restart=: a single [A-Za-z0-9_-] word, written as is.
//   - After=: unit names separated by spaces; each must be a valid unit name
//     (see [ValidUnitName]; any unit type, and `\` as in systemd-escape
//     output).
//   - RestartSec=: whole seconds ("5s"), else milliseconds ("1500ms"), else
//     microseconds rounded up ("1us").
//   - extra: the escape hatch for raw systemd syntax. Values are written
//     verbatim, so specifiers such as %h and quoting work as in a
//     hand-written unit; the only rules are the ones that keep the file's
//     structure intact: single line, no control characters, valid UTF-8, no
//     trailing `\`. An empty value writes "Name=", which resets a list.
//     Sections are Unit, Service, Install and X-* (systemd ignores the
//     latter); directive names are [A-Za-z0-9_-]+. Extra must not repeat a
//     directive that a spec field writes (ExecStart=, Environment=, ...).
//
// The file starts with a comment saying who wrote it and a machine-readable
// marker, "# reconciled.dev/module=<name>", which [IsManaged] looks for.
package unit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-systemd/v22/unit"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// markerPrefix starts the comment line that records the owning Module.
const markerPrefix = "# reconciled.dev/module="

// maxLine is systemd's limit on the length of one line of a unit file
// (LONG_LINE_MAX); longer lines make it refuse the file.
const maxLine = 1 << 20

// maxUnitName is the longest unit name systemd accepts (UNIT_NAME_MAX - 1).
const maxUnitName = 255

var (
	directiveNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	extraSectionRE  = regexp.MustCompile(`^X-[A-Za-z0-9_-]+$`)
	wordRE          = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	envNameRE       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// fieldDirectives are written from spec fields; extra must not repeat them.
var fieldDirectives = map[string][]string{
	"Unit":    {"Description", "After"},
	"Service": {"Type", "ExecStart", "WorkingDirectory", "User", "Environment", "Restart", "RestartSec"},
	"Install": {"WantedBy"},
}

// unitTypes are the unit name suffixes systemd knows.
var unitTypes = []string{
	".service", ".socket", ".target", ".device", ".mount", ".automount",
	".swap", ".timer", ".path", ".slice", ".scope",
}

// Render returns the unit file for the Module called name. The spec should
// be defaulted and validated, but Render checks everything it writes on its
// own: it returns an error, and no file, when a value cannot be written
// safely (see the package documentation). Empty fields write no directive;
// [Install] always has WantedBy=multi-user.target (scope system or empty)
// or WantedBy=default.target (scope user), whether or not the unit is
// enabled, since enabling is a separate step.
func Render(name string, spec *v1alpha1.ModuleSpec) ([]byte, error) {
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return nil, fmt.Errorf("module name %q: %s", name, strings.Join(msgs, "; "))
	}
	if spec == nil {
		return nil, errors.New("no spec")
	}
	var opts []*unit.UnitOption
	add := func(section, directive, value string) {
		opts = append(opts, unit.NewUnitOption(section, directive, value))
	}
	text := func(section, directive, value string) error {
		v, err := escapeText(value)
		if err != nil {
			return fmt.Errorf("%s: %w", directive, err)
		}
		if v != "" {
			add(section, directive, v)
		}
		return nil
	}
	word := func(section, directive, value string) error {
		switch {
		case value == "":
		case wordRE.MatchString(value):
			add(section, directive, value)
		default:
			return fmt.Errorf("%s: %q is not a single word", directive, value)
		}
		return nil
	}

	// [Unit]
	if err := text("Unit", "Description", spec.Description); err != nil {
		return nil, err
	}
	if len(spec.After) > 0 {
		for _, a := range spec.After {
			if err := validUnitName(a, unitTypes, true); err != nil {
				return nil, fmt.Errorf("After: %w", err)
			}
		}
		add("Unit", "After", strings.Join(spec.After, " "))
	}

	// [Service]
	if err := word("Service", "Type", spec.Type); err != nil {
		return nil, err
	}
	cmd, err := commandLine(spec.Exec)
	if err != nil {
		return nil, fmt.Errorf("ExecStart: %w", err)
	}
	add("Service", "ExecStart", cmd)
	if err := text("Service", "WorkingDirectory", spec.WorkingDirectory); err != nil {
		return nil, err
	}
	if err := text("Service", "User", spec.User); err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(spec.Environment)) {
		v, err := assignment(k, spec.Environment[k])
		if err != nil {
			return nil, fmt.Errorf("Environment: %w", err)
		}
		add("Service", "Environment", v)
	}
	if err := word("Service", "Restart", spec.Restart); err != nil {
		return nil, err
	}
	if spec.RestartSec != nil {
		v, err := timeSpan(spec.RestartSec.Duration)
		if err != nil {
			return nil, fmt.Errorf("RestartSec: %w", err)
		}
		add("Service", "RestartSec", v)
	}

	// [Install]
	switch spec.Scope {
	case "", "system":
		add("Install", "WantedBy", "multi-user.target")
	case "user":
		add("Install", "WantedBy", "default.target")
	default:
		return nil, fmt.Errorf("scope %q: must be system or user", spec.Scope)
	}

	if opts, err = addExtra(opts, spec.Extra); err != nil {
		return nil, err
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "# Managed by reconciled (Module %s); do not edit: changes are overwritten.\n", name)
	fmt.Fprintf(&b, "%s%s\n\n", markerPrefix, name)
	if _, err := io.Copy(&b, unit.Serialize(opts)); err != nil {
		return nil, err
	}
	for line := range bytes.Lines(b.Bytes()) {
		if len(line) > maxLine {
			return nil, fmt.Errorf("a line is %d bytes long; systemd accepts at most %d", len(line), maxLine)
		}
	}
	return b.Bytes(), nil
}

// addExtra appends the extra directives to opts: first those of the Unit,
// Service and Install sections, then the X- sections in sorted order;
// directives in sorted order within a section, values in the order given.
// It relies on unit.Serialize grouping options by section.
func addExtra(opts []*unit.UnitOption, extra map[string]map[string]v1alpha1.DirectiveValue) ([]*unit.UnitOption, error) {
	var xs []string
	for sec := range extra {
		if _, ok := fieldDirectives[sec]; ok {
			continue
		}
		if !extraSectionRE.MatchString(sec) {
			return nil, fmt.Errorf("extra: section %q: must be Unit, Service, Install or X-[A-Za-z0-9_-]+", sec)
		}
		xs = append(xs, sec)
	}
	slices.Sort(xs)
	for _, sec := range append([]string{"Unit", "Service", "Install"}, xs...) {
		dirs := extra[sec]
		for _, d := range slices.Sorted(maps.Keys(dirs)) {
			if !directiveNameRE.MatchString(d) {
				return nil, fmt.Errorf("extra: [%s] directive %q: must match [A-Za-z0-9_-]+", sec, d)
			}
			if slices.Contains(fieldDirectives[sec], d) {
				return nil, fmt.Errorf("extra: [%s] %s is written from the spec and must not be set in extra", sec, d)
			}
			for _, v := range dirs[d] {
				v = strings.TrimSpace(v)
				if err := checkLine(v); err != nil {
					return nil, fmt.Errorf("extra: [%s] %s: %w", sec, d, err)
				}
				opts = append(opts, unit.NewUnitOption(sec, d, v))
			}
		}
	}
	return opts, nil
}

// IsManaged reports whether content is a unit file written by [Render], and
// for which Module. It looks for the marker line in the comments at the top
// of the file only, so a unit that merely mentions the marker further down
// is not taken. A unit written for another Module is managed (ok is true)
// but not by the caller: compare module with the caller's own name.
func IsManaged(content []byte) (module string, ok bool) {
	for line := range bytes.Lines(content) {
		line = bytes.TrimRight(line, "\r\n")
		if rest, found := bytes.CutPrefix(line, []byte(markerPrefix)); found {
			name := string(rest)
			if len(validation.IsDNS1123Label(name)) == 0 {
				return name, true
			}
			return "", false
		}
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) > 0 && trimmed[0] != '#' && trimmed[0] != ';' {
			return "", false
		}
	}
	return "", false
}

// ValidUnitName returns an error unless name can be the unit name of a
// Module: a plain or instance service name such as "sensor.service" or
// "sensor@1.service", using only [a-zA-Z0-9:_.@-], at most 255 bytes long.
// Other unit types are refused because a Module is always a service;
// templates ("sensor@.service") are refused because they cannot be started
// themselves.
func ValidUnitName(name string) error {
	return validUnitName(name, []string{".service"}, false)
}

// validUnitName follows systemd's unit_name_is_valid for plain and instance
// names with one of the given suffixes. escapes allows `\`, which systemd
// accepts in names (systemd-escape writes "\x2d"), but which we do not want
// in names of files we create.
func validUnitName(name string, suffixes []string, escapes bool) error {
	if name == "" {
		return errors.New("unit name is empty")
	}
	if len(name) > maxUnitName {
		return fmt.Errorf("unit name %.40q...: longer than %d bytes", name, maxUnitName)
	}
	dot := strings.LastIndexByte(name, '.')
	if dot <= 0 || !slices.Contains(suffixes, name[dot:]) {
		return fmt.Errorf("unit name %q: must end in one of %s", name, strings.Join(suffixes, ", "))
	}
	prefix := name[:dot]
	for _, c := range []byte(prefix) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte(":_.@-", c) >= 0 || escapes && c == '\\'
		if !ok {
			return fmt.Errorf("unit name %q: may only use [a-zA-Z0-9:_.@-]", name)
		}
	}
	if at := strings.IndexByte(prefix, '@'); at == 0 {
		return fmt.Errorf("unit name %q: must not start with @", name)
	} else if at == len(prefix)-1 {
		return fmt.Errorf("unit name %q: is a template, not a unit that can run", name)
	}
	return nil
}

// timeSpan writes d as a systemd time span.
func timeSpan(d time.Duration) (string, error) {
	switch {
	case d < 0:
		return "", fmt.Errorf("%s is negative", d)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second), nil
	case d%time.Millisecond == 0:
		return fmt.Sprintf("%dms", d/time.Millisecond), nil
	default:
		return fmt.Sprintf("%dus", (d+time.Microsecond-1)/time.Microsecond), nil
	}
}

// escapeText trims v and doubles its % signs, for values that systemd takes
// verbatim apart from specifiers.
func escapeText(v string) (string, error) {
	v = strings.TrimSpace(v)
	if err := checkLine(v); err != nil {
		return "", err
	}
	return strings.ReplaceAll(v, "%", "%%"), nil
}

// checkLine returns an error unless v can be written verbatim as the value
// of a directive: valid UTF-8 without control characters, not ending in a
// backslash. v must be trimmed.
func checkLine(v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%q is not valid UTF-8", v)
	}
	if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
		return fmt.Errorf("%q: control character %U not allowed", v, []rune(v[i:])[0])
	}
	if strings.HasSuffix(v, `\`) {
		return fmt.Errorf("%q must not end in a backslash", v)
	}
	return nil
}
