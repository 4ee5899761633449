// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// duration returns a pointer to a metav1.Duration of d, for defaults.
func duration(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

// defaultDuration sets *p to d when it is unset.
func defaultDuration(p **metav1.Duration, d time.Duration) {
	if *p == nil {
		*p = duration(d)
	}
}

// validatePositive requires a set duration to be greater than zero.
func validatePositive(d *metav1.Duration, p *field.Path) field.ErrorList {
	if d != nil && d.Duration <= 0 {
		return field.ErrorList{field.Invalid(p, d.Duration.String(), "must be greater than zero")}
	}
	return nil
}

// validateAtLeast requires a set duration to be at least min; why says
// what a shorter one would do.
func validateAtLeast(d *metav1.Duration, min time.Duration, p *field.Path, why string) field.ErrorList {
	if d != nil && d.Duration < min {
		return field.ErrorList{field.Invalid(p, d.Duration.String(), fmt.Sprintf("must be at least %s: %s", min, why))}
	}
	return nil
}

// validateArgv requires a non-empty argv whose first element is set.
func validateArgv(argv []string, p *field.Path) field.ErrorList {
	if len(argv) == 0 || argv[0] == "" {
		return field.ErrorList{field.Required(p, "a program and its arguments, e.g. [\"/usr/bin/prog\", \"--flag\"]")}
	}
	var errs field.ErrorList
	for i, a := range argv {
		if strings.ContainsRune(a, 0) {
			errs = append(errs, field.Invalid(p.Index(i), a, "must not contain NUL"))
		}
	}
	return errs
}

// validateAbsPath requires an absolute, clean-able path when set.
func validateAbsPath(s string, p *field.Path) field.ErrorList {
	if s == "" {
		return nil
	}
	if !filepath.IsAbs(s) || strings.ContainsRune(s, 0) {
		return field.ErrorList{field.Invalid(p, s, "must be an absolute path")}
	}
	return nil
}

// validateHostPort requires host:port with a numeric or named port.
func validateHostPort(s string, p *field.Path) field.ErrorList {
	if s == "" {
		return field.ErrorList{field.Required(p, "host:port")}
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || port == "" {
		return field.ErrorList{field.Invalid(p, s, "must be host:port")}
	}
	if n, err := strconv.Atoi(port); err == nil && (n < 1 || n > 65535) {
		return field.ErrorList{field.Invalid(p, s, "port must be 1-65535")}
	}
	return nil
}

// validateURL requires an absolute URL with one of the given schemes.
func validateURL(s string, p *field.Path, schemes ...string) field.ErrorList {
	if s == "" {
		return field.ErrorList{field.Required(p, "a URL")}
	}
	u, err := url.Parse(s)
	if err != nil {
		return field.ErrorList{field.Invalid(p, s, err.Error())}
	}
	for _, sc := range schemes {
		if u.Scheme == sc && (u.Host != "" || sc == "file") {
			return nil
		}
	}
	return field.ErrorList{field.Invalid(p, s, "must be a "+strings.Join(schemes, " or ")+" URL")}
}

// ParseSignalName accepts "SIGTERM", "TERM", "sigterm" or "15" and returns
// the signal number.
func ParseSignalName(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %d out of range", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// validateEnvKeys rejects environment names that cannot be passed to exec.
func validateEnvKeys(env map[string]string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			errs = append(errs, field.Invalid(p.Key(k), k, "environment names must be non-empty and contain no '=' or NUL"))
		}
		if strings.ContainsRune(v, 0) {
			errs = append(errs, field.Invalid(p.Key(k), v, "must not contain NUL"))
		}
	}
	return errs
}

// exactlyOne reports an error unless exactly one of the named options is set.
func exactlyOne(p *field.Path, set map[string]bool) field.ErrorList {
	var names, on []string
	for n, ok := range set {
		names = append(names, n)
		if ok {
			on = append(on, n)
		}
	}
	if len(on) == 1 {
		return nil
	}
	sortStrings(names)
	sortStrings(on)
	if len(on) == 0 {
		return field.ErrorList{field.Required(p, "exactly one of "+strings.Join(names, ", "))}
	}
	return field.ErrorList{field.Invalid(p, strings.Join(on, ", "), "exactly one of "+strings.Join(names, ", ")+" may be set")}
}
