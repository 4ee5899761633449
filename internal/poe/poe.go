// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package poe talks to the PoE switch that powers the Raspberry Pis of
// PiNode resources: it turns a port's power on and off with
// POWER-ETHERNET-MIB pethPsePortAdminEnable (and reads it back to confirm),
// and reads the switch's BRIDGE-MIB forwarding table to find which MAC is
// on which port. It speaks SNMPv2c with a community or SNMPv3 (USM) with a
// user, authentication and privacy.
//
// Every call opens its own UDP socket and closes it before returning, so
// calls are safe from concurrent goroutines. Each request waits
// DefaultTimeout and is sent again DefaultRetries times; the context
// bounds the whole call. Errors name the switch and wrap one of the
// sentinel errors below (ErrNoAnswer, ErrReadOnly, ErrV3Auth, ...) for
// errors.Is; they never contain a community or password.
package poe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// Defaults for a Target's zero fields.
const (
	// DefaultPort is the switch's UDP port when Address has none.
	DefaultPort = 161
	// DefaultTimeout is how long one request waits for its answer.
	DefaultTimeout = 2 * time.Second
	// DefaultRetries is how many times a request that got no answer is sent again.
	DefaultRetries = 1
	// DefaultCommunity is the SNMPv2c community when Community is empty.
	DefaultCommunity = "public"
)

// Errors wrapped by the errors of this package, for errors.Is.
var (
	// ErrNoAnswer means the switch did not answer in time (or a closed port
	// refused the request). A wrong SNMPv2c community and a wrong SNMPv3
	// privacy password look the same: switches drop such requests silently.
	ErrNoAnswer = errors.New("does not answer")
	// ErrReadOnly means the switch refused a SET with noAccess, notWritable,
	// readOnly or authorizationError: the community or v3 user may only read.
	ErrReadOnly = errors.New("read-only or not allowed to set")
	// ErrV3Auth means the switch does not know the SNMPv3 user, or the
	// authentication password (or the security level) is wrong.
	ErrV3Auth = errors.New("wrong v3 user or password")
	// ErrNoSuchPort means the switch has no PoE port with that number.
	ErrNoSuchPort = errors.New("no such PoE port")
	// ErrWrongType means the switch refused the value's type, or answered with
	// a value of a type (or range) the MIB does not allow.
	ErrWrongType = errors.New("wrong type")
	// ErrRefused means the switch answered a request with another error status
	// (genErr, wrongValue, commitFailed, ...).
	ErrRefused = errors.New("switch refused the request")
	// ErrNotConfirmed means a SET was accepted but reading it back shows another value.
	ErrNotConfirmed = errors.New("power state not confirmed")
)

// Target says how to reach a switch. Secrets are plain strings here; the
// caller reads them from files (TargetFor does). Its String and GoString
// leave them out, so a Target can be logged.
type Target struct {
	// Address is "host:port", or "host" for port 161; IPv6 as "[::1]:161".
	Address string
	// Community is the SNMPv2c community, used when V3 is nil; empty
	// means DefaultCommunity ("public", which switches usually let only read).
	Community string
	// V3 selects SNMPv3 with this user; nil means SNMPv2c.
	V3 *V3
	// Timeout is how long one request waits; zero means DefaultTimeout.
	Timeout time.Duration
	// Retries is how many times an unanswered request is sent again;
	// zero means DefaultRetries, negative means never.
	Retries int
}

// V3 is an SNMPv3 user-based security setting. The security level follows
// from the passwords: none is noAuthNoPriv, AuthPassword alone authNoPriv,
// both authPriv.
type V3 struct {
	// User is the USM user name.
	User string
	// AuthProtocol is MD5, SHA, SHA224, SHA256, SHA384 or SHA512; empty
	// means SHA when AuthPassword is set.
	AuthProtocol string
	// AuthPassword is the authentication password (8 characters or more).
	AuthPassword string
	// PrivProtocol is DES, AES, AES192, AES256, AES192C or AES256C (the
	// C variants are Cisco's key extension); empty means AES when
	// PrivPassword is set.
	PrivProtocol string
	// PrivPassword is the privacy (encryption) password (8 characters or more).
	PrivPassword string
}

// String describes the target without its secrets, as
// "10.0.0.5:161 (v2c)" or "10.0.0.5:161 (v3 user poeadmin, authPriv SHA/AES)".
func (t Target) String() string {
	if t.V3 == nil {
		return t.addr() + " (v2c)"
	}
	return t.addr() + " (" + t.V3.String() + ")"
}

// GoString is String, so %#v does not print secrets either.
func (t Target) GoString() string { return "snmp.Target{" + t.String() + "}" }

// String describes the user without passwords, as "v3 user poeadmin, authPriv SHA/AES".
func (v V3) String() string {
	auth, priv := v.protocols()
	switch v.level() {
	case "noAuthNoPriv":
		return "v3 user " + v.User + ", noAuthNoPriv"
	case "authNoPriv":
		return "v3 user " + v.User + ", authNoPriv " + auth
	}
	return "v3 user " + v.User + ", authPriv " + auth + "/" + priv
}

// level is the USM security level the passwords give.
func (v V3) level() string {
	switch {
	case v.AuthPassword == "":
		return "noAuthNoPriv"
	case v.PrivPassword == "":
		return "authNoPriv"
	}
	return "authPriv"
}

// GoString is String, so %#v does not print passwords either.
func (v V3) GoString() string { return "snmp.V3{" + v.String() + "}" }

func (v V3) protocols() (auth, priv string) {
	auth, priv = strings.ToUpper(v.AuthProtocol), strings.ToUpper(v.PrivProtocol)
	if auth == "" {
		auth = "SHA"
	}
	if priv == "" {
		priv = "AES"
	}
	return auth, priv
}

var authProtocols = map[string]gosnmp.SnmpV3AuthProtocol{
	"MD5": gosnmp.MD5, "SHA": gosnmp.SHA, "SHA224": gosnmp.SHA224,
	"SHA256": gosnmp.SHA256, "SHA384": gosnmp.SHA384, "SHA512": gosnmp.SHA512,
}

var privProtocols = map[string]gosnmp.SnmpV3PrivProtocol{
	"DES": gosnmp.DES, "AES": gosnmp.AES, "AES192": gosnmp.AES192, "AES256": gosnmp.AES256,
	"AES192C": gosnmp.AES192C, "AES256C": gosnmp.AES256C,
}

// TargetFor builds the Target of a PiNode's spec.switch, reading the
// community or v3 passwords from their files (one trailing newline, or
// CRLF, is dropped). Errors name the field and file but never contain a
// secret. With neither community, communityFile nor v3, the Target uses
// DefaultCommunity.
func TargetFor(sw v1alpha1.SwitchPort) (Target, error) {
	t := Target{Address: sw.Address, Community: sw.Community}
	if sw.CommunityFile != "" {
		c, err := readSecret("communityFile", sw.CommunityFile)
		if err != nil {
			return Target{}, err
		}
		t.Community = c
	}
	if v := sw.V3; v != nil {
		t.Community = ""
		t.V3 = &V3{User: v.User, AuthProtocol: v.AuthProtocol, PrivProtocol: v.PrivProtocol}
		if v.AuthPasswordFile != "" {
			p, err := readSecret("v3 authPasswordFile", v.AuthPasswordFile)
			if err != nil {
				return Target{}, err
			}
			t.V3.AuthPassword = p
		}
		if v.PrivPasswordFile != "" {
			p, err := readSecret("v3 privPasswordFile", v.PrivPasswordFile)
			if err != nil {
				return Target{}, err
			}
			t.V3.PrivPassword = p
		}
		if err := t.V3.check(); err != nil {
			return Target{}, err
		}
	}
	return t, nil
}

// readSecret reads a one-line secret file.
func readSecret(what, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err) // *PathError names the file
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("%s %s: the file is empty", what, path)
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("%s %s: the file has more than one line", what, path)
	}
	return s, nil
}

// check validates the v3 settings without printing secrets.
func (v *V3) check() error {
	if v.User == "" {
		return errors.New("v3: user is empty")
	}
	if v.AuthProtocol != "" {
		if _, ok := authProtocols[strings.ToUpper(v.AuthProtocol)]; !ok {
			return fmt.Errorf("v3 authProtocol %q: want MD5, SHA, SHA224, SHA256, SHA384 or SHA512", v.AuthProtocol)
		}
	}
	if v.PrivProtocol != "" {
		if _, ok := privProtocols[strings.ToUpper(v.PrivProtocol)]; !ok {
			return fmt.Errorf("v3 privProtocol %q: want DES, AES, AES192, AES256, AES192C or AES256C", v.PrivProtocol)
		}
	}
	if v.AuthPassword == "" && v.PrivPassword != "" {
		return errors.New("v3: a privacy password needs an authentication password too")
	}
	if v.AuthPassword == "" && v.AuthProtocol != "" {
		return errors.New("v3: authProtocol is set but there is no authentication password")
	}
	if v.PrivPassword == "" && v.PrivProtocol != "" {
		return errors.New("v3: privProtocol is set but there is no privacy password")
	}
	if v.AuthPassword != "" && len(v.AuthPassword) < 8 {
		return errors.New("v3: the authentication password is shorter than 8 characters")
	}
	if v.PrivPassword != "" && len(v.PrivPassword) < 8 {
		return errors.New("v3: the privacy password is shorter than 8 characters")
	}
	return nil
}

// addr is Address with the default port filled in.
func (t Target) addr() string {
	if _, _, err := net.SplitHostPort(t.Address); err == nil {
		return t.Address
	}
	return net.JoinHostPort(strings.Trim(t.Address, "[]"), strconv.Itoa(DefaultPort))
}

func (t Target) timeout() time.Duration {
	if t.Timeout > 0 {
		return t.Timeout
	}
	return DefaultTimeout
}

func (t Target) retries() int {
	switch {
	case t.Retries < 0:
		return 0
	case t.Retries == 0:
		return DefaultRetries
	}
	return t.Retries
}

// session is one call's connection to a switch.
type session struct {
	t   Target
	ctx context.Context
	g   *gosnmp.GoSNMP
}

// connect opens a session; the caller closes it.
func connect(ctx context.Context, t Target) (*session, error) {
	host, portStr, err := net.SplitHostPort(t.addr())
	if err != nil {
		return nil, fmt.Errorf("switch address %q: %w", t.Address, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("switch address %q: bad port", t.Address)
	}
	if host == "" {
		return nil, fmt.Errorf("switch address %q: no host", t.Address)
	}
	g := &gosnmp.GoSNMP{
		Target:         host,
		Port:           uint16(port),
		Transport:      "udp",
		Context:        ctx,
		Timeout:        t.timeout(),
		Retries:        t.retries(),
		MaxOids:        gosnmp.MaxOids,
		MaxRepetitions: 25,
	}
	if v := t.V3; v != nil {
		if err := v.check(); err != nil {
			return nil, fmt.Errorf("switch %s: %w", t.addr(), err)
		}
		auth, priv := v.protocols()
		usm := &gosnmp.UsmSecurityParameters{UserName: v.User}
		g.Version, g.SecurityModel, g.MsgFlags = gosnmp.Version3, gosnmp.UserSecurityModel, gosnmp.NoAuthNoPriv
		if v.AuthPassword != "" {
			g.MsgFlags = gosnmp.AuthNoPriv
			usm.AuthenticationProtocol, usm.AuthenticationPassphrase = authProtocols[auth], v.AuthPassword
		}
		if v.PrivPassword != "" {
			g.MsgFlags = gosnmp.AuthPriv
			usm.PrivacyProtocol, usm.PrivacyPassphrase = privProtocols[priv], v.PrivPassword
		}
		g.SecurityParameters = usm
	} else {
		g.Version, g.Community = gosnmp.Version2c, t.Community
		if g.Community == "" {
			g.Community = DefaultCommunity
		}
	}
	if err := g.Connect(); err != nil {
		return nil, (&session{t: t, ctx: ctx}).fail("connect", err)
	}
	return &session{t: t, ctx: ctx, g: g}, nil
}

func (s *session) close() { s.g.Conn.Close() }

// fail turns a gosnmp error of operation op into one of this package's.
func (s *session) fail(op string, err error) error {
	addr := s.t.addr()
	if errors.Is(s.ctx.Err(), context.Canceled) {
		return fmt.Errorf("switch %s: %s: %w", addr, op, context.Canceled)
	}
	// The socket's deadline may be the context's, and fire a moment before
	// the context reports it.
	if dl, ok := s.ctx.Deadline(); ok && (s.ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || !time.Now().Before(dl)) {
		return fmt.Errorf("switch %s %w SNMP within the deadline (%s): %w", addr, ErrNoAnswer, op, context.DeadlineExceeded)
	}
	var nerr net.Error
	switch {
	case errors.Is(err, gosnmp.ErrMaxRetriesExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &nerr) && nerr.Timeout():
		hint := "a wrong community gets no answer either"
		if s.t.V3 != nil {
			hint = "a wrong v3 privacy password or protocol gets no answer either"
		}
		return fmt.Errorf("switch %s %w SNMP (%s: timeout after %v, %s; %s)", addr, ErrNoAnswer, op, s.t.timeout(), retryText(s.t.retries()), hint)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("switch %s %w SNMP (%s: connection refused, nothing listens on that UDP port)", addr, ErrNoAnswer, op)
	case s.t.V3 != nil && strings.Contains(err.Error(), "not authentic"):
		// The switch's report (wrong digest, unknown user) is not
		// authenticated, so gosnmp cannot read which one it was.
		return fmt.Errorf("switch %s: %w (%s)", addr, ErrV3Auth, s.whyNotAuthentic())
	case errors.Is(err, gosnmp.ErrWrongDigest):
		return fmt.Errorf("switch %s: %w (the authentication password or protocol of user %s does not match)", addr, ErrV3Auth, s.t.V3.User)
	case errors.Is(err, gosnmp.ErrUnknownUsername):
		return fmt.Errorf("switch %s: %w (the switch does not know user %s)", addr, ErrV3Auth, s.t.V3.User)
	case errors.Is(err, gosnmp.ErrDecryption):
		return fmt.Errorf("switch %s: %w (the privacy password or protocol of user %s does not match)", addr, ErrV3Auth, s.t.V3.User)
	case errors.Is(err, gosnmp.ErrUnknownSecurityLevel):
		return fmt.Errorf("switch %s: %w (the user does not allow security level %s)", addr, ErrV3Auth, s.t.V3.level())
	}
	return fmt.Errorf("switch %s: %s: %w", addr, op, err)
}

// whyNotAuthentic asks the switch, without authentication, whether it
// knows the user, and says which of user and password is wrong.
func (s *session) whyNotAuthentic() string {
	probe := &gosnmp.GoSNMP{Target: s.g.Target, Port: s.g.Port, Transport: "udp", Context: s.ctx,
		Timeout: min(s.t.timeout(), time.Second), Version: gosnmp.Version3,
		SecurityModel: gosnmp.UserSecurityModel, MsgFlags: gosnmp.NoAuthNoPriv,
		SecurityParameters: &gosnmp.UsmSecurityParameters{UserName: s.t.V3.User}}
	if probe.Connect() == nil {
		defer probe.Conn.Close()
		if _, err := probe.Get([]string{".1.3.6.1.2.1.1.3.0"}); errors.Is(err, gosnmp.ErrUnknownUsername) {
			return "the switch does not know user " + s.t.V3.User
		}
	}
	return "the authentication password or protocol of user " + s.t.V3.User + " does not match"
}

// answer checks that res is a Response.
func (s *session) answer(op string, res *gosnmp.SnmpPacket) error {
	switch res.PDUType {
	case gosnmp.GetResponse:
		return nil
	case gosnmp.GetRequest, gosnmp.SetRequest, gosnmp.GetBulkRequest, gosnmp.GetNextRequest:
		// A socket that got the very local port it sends to reads its own request back.
		return fmt.Errorf("switch %s %w SNMP (the request came back: nothing listens on that UDP port)", s.t.addr(), ErrNoAnswer)
	}
	return fmt.Errorf("switch %s: %s: %w (the answer is a %v, not a Response)", s.t.addr(), op, ErrRefused, res.PDUType)
}

// status turns an error status the switch answered to op into an error;
// set says whether op was a SET.
func (s *session) status(op string, st gosnmp.SNMPError, set bool) error {
	addr := s.t.addr()
	says := lowerFirst(st.String())
	who := "community"
	if s.t.V3 != nil {
		who = "v3 user " + s.t.V3.User
	}
	switch st {
	case gosnmp.NoAccess, gosnmp.NotWritable, gosnmp.ReadOnly, gosnmp.AuthorizationError:
		if set {
			return fmt.Errorf("switch %s: %s: %s is %w (the switch says %s)", addr, op, who, ErrReadOnly, says)
		}
		return fmt.Errorf("switch %s: %s: %w: the %s may not read it (%s)", addr, op, ErrRefused, who, says)
	case gosnmp.WrongType:
		return fmt.Errorf("switch %s: %s: %w (the switch says wrongType)", addr, op, ErrWrongType)
	}
	return fmt.Errorf("switch %s: %s: %w (%s)", addr, op, ErrRefused, says)
}

func retryText(n int) string {
	switch n {
	case 0:
		return "no retry"
	case 1:
		return "1 retry"
	}
	return strconv.Itoa(n) + " retries"
}

// lowerFirst spells gosnmp's "NoAccess" as the RFC's "noAccess".
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
