// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package receivers delivers alert notifications to the receivers of an
// AlertRoute: email (SMTP with STARTTLS and AUTH PLAIN), webhook (JSON with
// an idempotency key and an optional HMAC signature), Alertmanager
// (POST /api/v2/alerts), exec (notification JSON on stdin) and the daemon's
// log.
//
// It also defines the alert types shared with the alert manager: Alert, one
// alert instance, and Notification, one delivery of a group of alerts. The
// alert manager owns grouping, the durable outbox and retries; a Receiver
// only performs one delivery attempt per Send and reports whether the peer
// accepted it. Notification.ID is stable across retries, so peers can drop
// duplicates (email Message-ID, webhook Idempotency-Key).
//
// Secrets (SMTP password, webhook HMAC key) are read from their files at
// send time, so rotating a file needs no reload, and never appear in
// errors or logs. Errors do not repeat the receiver's Name; for HTTP
// receivers they name only the URL's scheme and host (paths and queries of
// webhook URLs often hold tokens).
package receivers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/internal/regularfile"
)

// Notification statuses.
const (
	// StatusFiring means at least one alert of the notification is firing.
	StatusFiring = "firing"
	// StatusResolved means every alert of the notification is resolved.
	StatusResolved = "resolved"
)

// DefaultTimeout bounds one Send when Options.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// maxSecretBytes bounds how much of a secret file is read.
const maxSecretBytes = 64 << 10

// Alert is one alert instance.
type Alert struct {
	// Name is <Kind><Reason>, e.g. "LinkDown".
	Name string `json:"name"`
	// Kind is the resource kind, e.g. "Link".
	Kind string `json:"kind"`
	// Object is the resource name, e.g. "a2rtr".
	Object string `json:"object"`
	// Severity is info, warning or critical.
	Severity string `json:"severity"`
	// Labels are kind, name, severity, alertname and the resource's labels.
	Labels map[string]string `json:"labels"`
	// Summary is one line for humans, e.g. "Link a2rtr is Down".
	Summary string `json:"summary"`
	// ResolvedSummary is the line used once resolved, e.g. "Link a2rtr is Up".
	ResolvedSummary string `json:"resolvedSummary,omitempty"`
	// Message holds the details, e.g. the last error.
	Message string `json:"message"`
	// StartsAt is when the alert started firing.
	StartsAt time.Time `json:"startsAt"`
	// EndsAt is when the alert resolved; zero (and omitted) while firing.
	EndsAt time.Time `json:"endsAt,omitzero"`
	// Fingerprint is a stable id of (Name, Kind, Object); see Fingerprint.
	Fingerprint string `json:"fingerprint"`
	// Replaced are label sets the alert fired with before its labels
	// changed (a Check's earlier levels), newest last, at most
	// MaxReplaced: Alertmanager, which tells alerts apart by their labels,
	// is told they ended.
	Replaced []map[string]string `json:"replaced,omitempty"`
	// Deleted is set on an alert resolved because its resource was deleted
	// (not because it recovered).
	Deleted bool `json:"deleted,omitempty"`
}

// Firing reports whether the alert is still firing (EndsAt is zero).
func (a Alert) Firing() bool { return a.EndsAt.IsZero() }

// Fingerprint returns a stable identifier of the alert (name, kind, object):
// 16 hex digits of a SHA-256.
func Fingerprint(name, kind, object string) string {
	h := sha256.Sum256([]byte(name + "\x00" + kind + "\x00" + object))
	return hex.EncodeToString(h[:8])
}

// MaxReplaced bounds Alert.Replaced.
const MaxReplaced = 8

// Labels of a Check's alert: the level it took and the one before.
const (
	LabelLevel         = "level"
	LabelPreviousLevel = "previousLevel"
)

// Notification is one delivery: a group of alerts of one route at one moment.
type Notification struct {
	// ID is stable across retries: the idempotency key and Message-ID base.
	ID string `json:"id"`
	// Route is the AlertRoute's name.
	Route string `json:"route"`
	// GroupKey identifies the group of alerts within the route.
	GroupKey string `json:"groupKey"`
	// Status is "firing", or "resolved" when every alert is resolved.
	Status string `json:"status"`
	// Alerts are the alerts of the group.
	Alerts []Alert `json:"alerts"`
	// Host is the daemon's host name.
	Host string `json:"host"`
	// CreatedAt is when the notification was created (not when it is sent).
	CreatedAt time.Time `json:"createdAt"`
	// Test is set for notifications sent by `reconcilectl alert test`.
	Test bool `json:"test,omitempty"`
}

// Receiver delivers notifications.
type Receiver interface {
	// Name identifies the receiver within its route: "email", "webhook", ...
	// with the index, e.g. "email[0]".
	Name() string
	// Send delivers n; nil means the peer accepted it. Must honour ctx.
	// Errors must never contain secrets.
	Send(ctx context.Context, n Notification) error
}

// Options are shared by all receivers.
type Options struct {
	// Log receives the log receiver's output and debug messages.
	Log logr.Logger
	// Timeout bounds one Send; zero means DefaultTimeout.
	Timeout time.Duration
}

// New builds the receiver for spec (index is its position in the route's
// receivers list). Exactly one receiver type must be set.
func New(spec v1alpha1.Receiver, index int, o Options) (Receiver, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
	var set []string
	for name, ok := range map[string]bool{
		"email": spec.Email != nil, "webhook": spec.Webhook != nil, "alertmanager": spec.Alertmanager != nil,
		"exec": spec.Exec != nil, "log": spec.Log != nil,
	} {
		if ok {
			set = append(set, name)
		}
	}
	if len(set) != 1 {
		return nil, fmt.Errorf("receivers[%d]: exactly one of email, webhook, alertmanager, exec, log must be set, got %d", index, len(set))
	}
	var (
		r   Receiver
		err error
	)
	switch {
	case spec.Email != nil:
		r, err = newEmail(*spec.Email, fmt.Sprintf("email[%d]", index), o)
	case spec.Webhook != nil:
		r, err = newWebhook(*spec.Webhook, fmt.Sprintf("webhook[%d]", index), o)
	case spec.Alertmanager != nil:
		r, err = newAlertmanager(*spec.Alertmanager, fmt.Sprintf("alertmanager[%d]", index), o)
	case spec.Exec != nil:
		r, err = newExec(*spec.Exec, fmt.Sprintf("exec[%d]", index), o)
	default:
		r = &logReceiver{name: fmt.Sprintf("log[%d]", index), log: o.Log}
	}
	if err != nil {
		return nil, fmt.Errorf("receivers[%d]: %w", index, err)
	}
	return r, nil
}

// statusOf returns n.Status when it is valid and derives it from the
// alerts otherwise.
func statusOf(n Notification) string {
	switch n.Status {
	case StatusFiring, StatusResolved:
		return n.Status
	}
	for _, a := range n.Alerts {
		if a.Firing() {
			return StatusFiring
		}
	}
	if len(n.Alerts) == 0 {
		return StatusFiring
	}
	return StatusResolved
}

// notificationID returns n.ID, or when it is empty an ID derived from the
// notification's identity, so that it is stable across retries anyway.
func notificationID(n Notification) string {
	if n.ID != "" {
		return n.ID
	}
	h := sha256.Sum256([]byte(n.Route + "\x00" + n.GroupKey + "\x00" + statusOf(n) + "\x00" + n.CreatedAt.UTC().Format(time.RFC3339Nano)))
	return "n-" + hex.EncodeToString(h[:12])
}

// createdAt returns n.CreatedAt, or now when it is zero.
func createdAt(n Notification) time.Time {
	if n.CreatedAt.IsZero() {
		return time.Now()
	}
	return n.CreatedAt
}

// summaryOf is the one-line description of a, in its current state.
func summaryOf(a Alert) string {
	if a.Firing() {
		return firingSummary(a)
	}
	if a.ResolvedSummary != "" {
		return a.ResolvedSummary
	}
	return firingSummary(a) + " resolved"
}

func firingSummary(a Alert) string {
	if a.Summary != "" {
		return a.Summary
	}
	s := strings.TrimSpace(a.Kind + " " + a.Object)
	if a.Name != "" {
		if s != "" {
			s += ": "
		}
		s += a.Name
	}
	if s == "" {
		return "alert"
	}
	return s
}

// readSecretFile reads a secret file. Errors name the file but never its
// content. A FIFO or device is refused without blocking.
func readSecretFile(what, path string) (string, error) {
	b, _, err := regularfile.Read(path, maxSecretBytes)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	return string(b), nil
}

// CheckSecrets reads every secret file a receiver names (never keeping or
// showing the content), so that a missing or unreadable one shows on the
// route at once instead of at its first delivery.
func CheckSecrets(spec v1alpha1.Receiver) error {
	var files []struct{ what, path string }
	if e := spec.Email; e != nil && e.PasswordFile != "" {
		files = append(files, struct{ what, path string }{"password file", e.PasswordFile})
	}
	if w := spec.Webhook; w != nil && w.SecretFile != "" {
		files = append(files, struct{ what, path string }{"secret file", w.SecretFile})
	}
	for _, f := range files {
		s, err := readSecretFile(f.what, f.path)
		if err != nil {
			return err
		}
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("read %s %s: %w", f.what, f.path, errSecretEmpty)
		}
	}
	return nil
}

// errSecretEmpty is returned for secret files holding nothing.
var errSecretEmpty = errors.New("file is empty")

// truncate returns at most n bytes of s (cut on a rune boundary), with
// control characters replaced by spaces, for error messages.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > n {
		cut := n
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// ctxErr prefers the context's error (cancelled, deadline exceeded) over
// err, which is then usually a less telling i/o error; err is kept as
// detail.
func ctxErr(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if cerr == nil || err == nil || errors.Is(err, cerr) {
		return err
	}
	return fmt.Errorf("%w (%v)", cerr, err)
}
