// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DefaultSocketBacklog is the backlog of a socket that names none (systemd's
// Backlog= default, SOMAXCONN); the kernel caps it at net.core.somaxconn.
const DefaultSocketBacklog = 4096

// maxSocketBacklog bounds Socket.Backlog (the kernel's own limit is lower).
const maxSocketBacklog = 65535

// maxUnixPath is the longest path a unix socket address holds
// (sun_path is 108 bytes with the terminating NUL).
const maxUnixPath = 107

// SocketNetworks are the schemes of Socket.Listen, as Go's net package
// names the networks.
var SocketNetworks = []string{"tcp", "udp", "unix"}

// ParseSocketListen splits a Socket.Listen value into the network ("tcp",
// "udp" or "unix") and the address to bind: HOST:PORT, or an absolute path.
func ParseSocketListen(s string) (network, address string, err error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", "", fmt.Errorf("want tcp://HOST:PORT, udp://HOST:PORT or unix:///PATH")
	}
	switch scheme {
	case "tcp", "udp":
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return "", "", fmt.Errorf("want %s://HOST:PORT (HOST may be empty for every address, [::1] for IPv6): %v", scheme, err)
		}
		if strings.ContainsAny(host, "/?#@ \t\x00") {
			return "", "", fmt.Errorf("host %q: want a name or an IP address", host)
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 0 || n > 65535 || port != strconv.Itoa(n) {
			return "", "", fmt.Errorf("port %q: want a number 0-65535 (0 picks a free port)", port)
		}
		return scheme, net.JoinHostPort(host, port), nil
	case "unix":
		if !strings.HasPrefix(rest, "/") {
			return "", "", fmt.Errorf("want unix:///PATH with an absolute path (three slashes)")
		}
		if strings.ContainsRune(rest, 0) || filepath.Clean(rest) != rest || rest == "/" {
			return "", "", fmt.Errorf("path %q: want a clean absolute path of a file", rest)
		}
		if len(rest) > maxUnixPath {
			return "", "", fmt.Errorf("path %q is %d bytes: a unix socket path holds at most %d", rest, len(rest), maxUnixPath)
		}
		return scheme, rest, nil
	}
	return "", "", fmt.Errorf("scheme %q: want tcp, udp or unix", scheme)
}

// ParseSocketMode parses Socket.Mode, an octal permission such as "0660".
func ParseSocketMode(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return 0, fmt.Errorf("want an octal permission such as \"0660\"")
	}
	return uint32(n), nil
}

// validSocketName reports whether LISTEN_FDNAMES can carry name (systemd's
// rule: at most 255 printable characters, no ':').
func validSocketName(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for _, r := range name {
		if r == ':' || !unicode.IsPrint(r) || r > unicode.MaxASCII {
			return false
		}
	}
	return true
}

// validateSockets checks Process.spec.sockets (defaulted).
func validateSockets(socks []Socket, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]int{}
	for i, s := range socks {
		sp := p.Index(i)
		if s.Listen == "" {
			errs = append(errs, field.Required(sp.Child("listen"), "tcp://HOST:PORT, udp://HOST:PORT or unix:///PATH"))
			continue
		}
		network, addr, err := ParseSocketListen(s.Listen)
		if err != nil {
			errs = append(errs, field.Invalid(sp.Child("listen"), s.Listen, err.Error()))
			continue
		}
		key := network + " " + addr
		if j, dup := seen[key]; dup && !strings.HasSuffix(addr, ":0") {
			errs = append(errs, field.Duplicate(sp.Child("listen"), fmt.Sprintf("%s (also sockets[%d])", s.Listen, j)))
		}
		seen[key] = i
		if !validSocketName(s.Name) {
			errs = append(errs, field.Invalid(sp.Child("name"), s.Name, "want 1-255 printable ASCII characters without ':' (it goes into LISTEN_FDNAMES)"))
		}
		if network != "udp" && (s.Backlog < 1 || s.Backlog > maxSocketBacklog) {
			errs = append(errs, field.Invalid(sp.Child("backlog"), s.Backlog, fmt.Sprintf("want 1-%d", maxSocketBacklog)))
		}
		if network == "udp" && s.Backlog != 0 {
			errs = append(errs, field.Invalid(sp.Child("backlog"), s.Backlog, "a udp socket has no backlog"))
		}
		if network != "unix" {
			for _, f := range []struct{ name, v string }{{"mode", s.Mode}, {"owner", s.Owner}, {"group", s.Group}} {
				if f.v != "" {
					errs = append(errs, field.Invalid(sp.Child(f.name), f.v, "only a unix socket has a file to own"))
				}
			}
			continue
		}
		if _, err := ParseSocketMode(s.Mode); err != nil {
			errs = append(errs, field.Invalid(sp.Child("mode"), s.Mode, err.Error()))
		}
		for _, f := range []struct{ name, v string }{{"owner", s.Owner}, {"group", s.Group}} {
			if strings.ContainsAny(f.v, ":\x00 \t\n") {
				errs = append(errs, field.Invalid(sp.Child(f.name), f.v, "want a name or a numeric id"))
			}
		}
	}
	return errs
}
