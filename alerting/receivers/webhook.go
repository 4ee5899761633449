// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package receivers

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// PayloadVersion is the version of WebhookPayload.
const PayloadVersion = "1"

// Header names used by the webhook receiver.
const (
	// IdempotencyKeyHeader carries Notification.ID, the same on every retry.
	IdempotencyKeyHeader = "Idempotency-Key"
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
	// keyed with the content of the webhook's secretFile.
	SignatureHeader = "X-Reconciled-Signature"
)

// maxErrorBody is how much of a peer's response body an error quotes.
const maxErrorBody = 200

// WebhookPayload is the JSON body of the webhook receiver and the stdin of
// the exec receiver.
type WebhookPayload struct {
	// Version is PayloadVersion.
	Version string `json:"version"`
	// ID is the notification's idempotency key.
	ID string `json:"id"`
	// Route is the AlertRoute's name.
	Route string `json:"route"`
	// GroupKey identifies the group of alerts within the route.
	GroupKey string `json:"groupKey"`
	// Status is "firing" or "resolved".
	Status string `json:"status"`
	// Host is the daemon's host name.
	Host string `json:"host"`
	// CreatedAt is when the notification was created.
	CreatedAt time.Time `json:"createdAt,omitzero"`
	// Alerts are the notification's alerts.
	Alerts []Alert `json:"alerts"`
	// Test is set for test notifications.
	Test bool `json:"test"`
}

// EncodeWebhookPayload returns the webhook JSON body for n.
func EncodeWebhookPayload(n Notification) ([]byte, error) {
	alerts := n.Alerts
	if alerts == nil {
		alerts = []Alert{}
	}
	b, err := json.Marshal(WebhookPayload{
		Version:   PayloadVersion,
		ID:        notificationID(n),
		Route:     n.Route,
		GroupKey:  n.GroupKey,
		Status:    statusOf(n),
		Host:      n.Host,
		CreatedAt: n.CreatedAt,
		Alerts:    alerts,
		Test:      n.Test,
	})
	if err != nil {
		return nil, fmt.Errorf("encode notification: %w", err)
	}
	return b, nil
}

// Sign returns the SignatureHeader value for body: "sha256=" and the hex
// HMAC-SHA256 of body keyed with secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// httpClient is shared by the HTTP receivers, so that rebuilding a route's
// receivers does not leak connection pools. Redirects are not followed: a
// 3xx is reported as an error rather than re-posting a signed body to
// another place.
var httpClient = &http.Client{
	Transport: http.DefaultTransport.(*http.Transport).Clone(),
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// webhookReceiver POSTs the notification as JSON.
type webhookReceiver struct {
	name string
	url  *url.URL
	spec v1alpha1.WebhookReceiver
	o    Options
}

func newWebhook(spec v1alpha1.WebhookReceiver, name string, o Options) (*webhookReceiver, error) {
	u, err := parseHTTPURL(spec.URL)
	if err != nil {
		return nil, fmt.Errorf("webhook url: %w", err)
	}
	return &webhookReceiver{name: name, url: u, spec: spec, o: o}, nil
}

// Name implements Receiver.
func (w *webhookReceiver) Name() string { return w.name }

// Send implements Receiver: one POST; any 2xx means accepted.
func (w *webhookReceiver) Send(ctx context.Context, n Notification) error {
	body, err := EncodeWebhookPayload(n)
	if err != nil {
		return err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(IdempotencyKeyHeader, headerSafe(notificationID(n)))
	if w.spec.SecretFile != "" {
		s, err := readSecretFile("secret file", w.spec.SecretFile)
		if err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return fmt.Errorf("read secret file %s: %w", w.spec.SecretFile, errSecretEmpty)
		}
		h.Set(SignatureHeader, Sign([]byte(s), body))
	}
	return post(ctx, w.url, body, h, w.o.Timeout)
}

// parseHTTPURL parses an absolute http or https URL.
func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error quotes the URL, which may hold credentials.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("invalid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("URL has no host")
	}
	return u, nil
}

// post sends body to u and checks for a 2xx answer. Errors name only the
// URL's scheme and host: paths, queries and user info of webhook URLs often
// hold tokens.
func post(ctx context.Context, u *url.URL, body []byte, h http.Header, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	where := u.Scheme + "://" + u.Host
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("post to %s: invalid request", where)
	}
	req.Header = h
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "reconciled-alerts/1")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post to %s: %w", where, ctxErr(ctx, err))
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
	// Drain a little more so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	msg := fmt.Sprintf("post to %s: %s", where, resp.Status)
	if t := truncate(string(head), maxErrorBody); t != "" {
		msg += ": " + t
	}
	if httpPermanent(resp.StatusCode) {
		return &PermanentError{Err: errors.New(msg)}
	}
	return errors.New(msg)
}
