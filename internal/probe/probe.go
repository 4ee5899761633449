// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package probe runs the single check a Link describes (TCP connect, ICMP
// echo, HTTP(S) request or a command) and classifies the outcome.
//
// One Prober is shared by all Links: it caches HTTP transports (one per unix
// socket path, keep-alives off so every probe opens a fresh connection and so
// measures the link) and compiled body regular expressions.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// Reasons a probe failed, reported in Result.Reason.
const (
	// ReasonRefused means nobody listens at the address (connection refused or,
	// for a unix socket, no socket file).
	ReasonRefused = "ConnectionRefused"
	// ReasonTimeout means no answer within the timeout.
	ReasonTimeout = "Timeout"
	// ReasonDNS means the host name could not be resolved.
	ReasonDNS = "DNSError"
	// ReasonTLS means the TLS handshake failed (untrusted or invalid certificate,
	// alert, not TLS at all).
	ReasonTLS = "TLSError"
	// ReasonUnexpectedStatus means the HTTP status is not one of those expected.
	ReasonUnexpectedStatus = "UnexpectedStatus"
	// ReasonUnexpectedBody means the HTTP body does not match ExpectBody.
	ReasonUnexpectedBody = "UnexpectedBody"
	// ReasonExecFailed means the command could not be started or exited non-zero.
	ReasonExecFailed = "ExecFailed"
	// ReasonUnreachable means the network or host is unreachable.
	ReasonUnreachable = "Unreachable"
	// ReasonError means any other failure, including an invalid spec.
	ReasonError = "Error"
)

// DefaultTimeout bounds a probe when Probe is given a non-positive timeout.
const DefaultTimeout = 5 * time.Second

// MaxMessage is the longest Result.Message in bytes.
const MaxMessage = 512

// maxBody is how much of an HTTP body ExpectBody is matched against.
const maxBody = 1 << 20

// maxRegexps bounds the compiled-pattern cache; it is emptied when full.
const maxRegexps = 4096

// Result is the outcome of one probe.
type Result struct {
	// OK is true when the probe succeeded.
	OK bool
	// Latency is the time to the answer (also for failures when known).
	Latency time.Duration
	// Reason is "" when OK; else one of the Reason* constants.
	Reason string
	// Message is for people: the error, the command output (trimmed to
	// MaxMessage bytes), the unexpected status, etc.
	Message string
	// At is when the probe started.
	At time.Time
}

// Prober runs probes; one Prober is shared by all Links and is safe for
// concurrent use.
type Prober struct {
	// resolver resolves host names for all kinds of probe; nil means
	// net.DefaultResolver. Tests point it at a loopback server.
	resolver *net.Resolver

	mu         sync.Mutex
	transports map[string]*http.Transport // by unix socket path, "" for TCP

	reMu    sync.RWMutex
	regexps map[string]*regexp.Regexp
}

// NewProber returns a Prober with empty caches.
func NewProber() *Prober {
	return &Prober{
		transports: make(map[string]*http.Transport),
		regexps:    make(map[string]*regexp.Regexp),
	}
}

// Probe runs the single probe configured in spec (exactly one of TCP, ICMP,
// HTTP and Exec is set) within timeout; a non-positive timeout means
// DefaultTimeout. Cancelling ctx ends the probe early. Probe never panics on
// a bad spec: it reports ReasonError.
func (p *Prober) Probe(ctx context.Context, spec *v1alpha1.LinkSpec, timeout time.Duration) Result {
	start := time.Now()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var r Result
	switch n := countProbes(spec); {
	case n != 1:
		r = Result{Reason: ReasonError, Message: fmt.Sprintf("spec must configure exactly one probe, found %d", n)}
	case spec.TCP != nil:
		r = p.probeTCP(ctx, spec.TCP, start)
	case spec.ICMP != nil:
		r = p.probeICMP(ctx, spec.ICMP, start)
	case spec.HTTP != nil:
		r = p.probeHTTP(ctx, spec.HTTP, start)
	default:
		r = p.probeExec(ctx, spec.Exec, start)
	}
	r.At = start
	if r.OK {
		r.Reason = ""
	}
	r.Message = trimMessage(r.Message)
	return r
}

func countProbes(spec *v1alpha1.LinkSpec) int {
	if spec == nil {
		return 0
	}
	n := 0
	for _, set := range []bool{spec.TCP != nil, spec.ICMP != nil, spec.HTTP != nil, spec.Exec != nil} {
		if set {
			n++
		}
	}
	return n
}

// failure builds a failed Result from err.
func failure(err error, start time.Time) Result {
	return Result{Latency: time.Since(start), Reason: classify(err), Message: err.Error()}
}

// classify maps an error from dialing, resolving, TLS or HTTP to a Reason.
func classify(err error) string {
	var dnsErr *net.DNSError
	var recErr tls.RecordHeaderError
	var alertErr tls.AlertError
	var verifyErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidErr x509.CertificateInvalidError
	var netErr net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &dnsErr):
		return ReasonDNS
	case errors.As(err, &recErr), errors.As(err, &alertErr), errors.As(err, &verifyErr),
		errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalidErr):
		return ReasonTLS
	case errors.Is(err, syscall.ECONNREFUSED), isDialENOENT(err):
		return ReasonRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EHOSTDOWN), errors.Is(err, syscall.ENETDOWN):
		return ReasonUnreachable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT),
		errors.As(err, &netErr) && netErr.Timeout():
		return ReasonTimeout
	case strings.Contains(err.Error(), "tls: "),
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		// crypto/tls reports many handshake failures as plain errors, and
		// net/http hides the RecordHeaderError of a plain-HTTP answer.
		return ReasonTLS
	default:
		return ReasonError
	}
}

// isDialENOENT reports a dial to a unix socket path that does not exist.
func isDialENOENT(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial" && errors.Is(err, syscall.ENOENT)
}

// trimMessage trims white space and cuts s to MaxMessage bytes without
// splitting a UTF-8 sequence.
func trimMessage(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= MaxMessage {
		return s
	}
	cut := MaxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// regexp returns the compiled pattern, compiling it once.
func (p *Prober) regexp(pattern string) (*regexp.Regexp, error) {
	p.reMu.RLock()
	re, ok := p.regexps[pattern]
	p.reMu.RUnlock()
	if ok {
		return re, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("invalid expectBody: %w", err)
	}
	p.reMu.Lock()
	if len(p.regexps) >= maxRegexps {
		clear(p.regexps)
	}
	p.regexps[pattern] = re
	p.reMu.Unlock()
	return re, nil
}

// dialer returns a dialer using the Prober's resolver.
func (p *Prober) dialer() *net.Dialer {
	return &net.Dialer{Resolver: p.resolver}
}
