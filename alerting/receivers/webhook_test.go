// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package receivers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// hookRequest is one request a test server received.
type hookRequest struct {
	method, path string
	header       http.Header
	body         []byte
}

// hookServer answers every request with status and body, recording it.
func hookServer(t *testing.T, status int, body string) (*httptest.Server, <-chan hookRequest) {
	t.Helper()
	reqs := make(chan hookRequest, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reqs <- hookRequest{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: b}
		if status/100 == 3 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, reqs
}

func TestWebhook(t *testing.T) {
	srv, reqs := hookServer(t, http.StatusNoContent, "")
	secret := writeFile(t, "hook-secret", "  s3cr3t-key\n")
	r := newReceiver(t, v1alpha1.Receiver{Webhook: &v1alpha1.WebhookReceiver{URL: srv.URL + "/hook", SecretFile: secret}}, 1, Options{})
	if r.Name() != "webhook[1]" {
		t.Errorf("Name() = %q", r.Name())
	}
	n := notification("n-42", linkAlert("a2rtr", false), linkAlert("b3rtr", true))
	n.Test = true
	if err := r.Send(context.Background(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	req := <-reqs
	if req.method != http.MethodPost || req.path != "/hook" {
		t.Errorf("request %s %s, want POST /hook", req.method, req.path)
	}
	if ct := req.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if k := req.header.Get("Idempotency-Key"); k != "n-42" {
		t.Errorf("Idempotency-Key = %q, want n-42", k)
	}
	sig := req.header.Get("X-Reconciled-Signature")
	m := hmac.New(sha256.New, []byte("s3cr3t-key"))
	m.Write(req.body)
	if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); !hmac.Equal([]byte(sig), []byte(want)) {
		t.Errorf("signature %q, want %q", sig, want)
	}
	// The body's shape, key by key.
	var raw map[string]any
	if err := json.Unmarshal(req.body, &raw); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, req.body)
	}
	for k, want := range map[string]any{"version": "1", "id": "n-42", "route": "ops", "groupKey": `{}:{kind="Link"}`,
		"status": "firing", "host": "hecnet-gw", "test": true} {
		if raw[k] != want {
			t.Errorf("body[%q] = %v, want %v", k, raw[k], want)
		}
	}
	alerts := raw["alerts"].([]any)
	if _, ok := alerts[0].(map[string]any)["endsAt"]; ok {
		t.Errorf("firing alert has endsAt: %v", alerts[0])
	}
	if alerts[1].(map[string]any)["endsAt"] != "2026-03-04T05:18:07Z" {
		t.Errorf("resolved alert's endsAt: %v", alerts[1])
	}
	var p WebhookPayload
	if err := json.Unmarshal(req.body, &p); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(n.Alerts, p.Alerts); diff != "" {
		t.Errorf("alerts (-sent +received):\n%s", diff)
	}

	// No secret file: no signature.
	r = newReceiver(t, v1alpha1.Receiver{Webhook: &v1alpha1.WebhookReceiver{URL: srv.URL + "/hook"}}, 0, Options{})
	if err := r.Send(context.Background(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if req := <-reqs; req.header.Get("X-Reconciled-Signature") != "" {
		t.Errorf("unsigned webhook sent a signature")
	}
}

func TestWebhookErrors(t *testing.T) {
	long := strings.Repeat("x", 1000)
	failing, _ := hookServer(t, http.StatusInternalServerError, "database on fire "+long)
	redirect, _ := hookServer(t, http.StatusFound, "")
	ok, okReqs := hookServer(t, http.StatusOK, "")
	missing := filepath.Join(t.TempDir(), "no-such-secret")
	for _, tc := range []struct {
		name    string
		spec    v1alpha1.WebhookReceiver
		want    []string
		notWant []string
	}{{
		name:    "500",
		spec:    v1alpha1.WebhookReceiver{URL: failing.URL + "/hook/T123/tok-path-secret?token=tok-query-secret"},
		want:    []string{"500", "database on fire", failing.URL},
		notWant: []string{long[:200], "tok-path-secret", "tok-query-secret"},
	}, {
		name: "redirect not followed",
		spec: v1alpha1.WebhookReceiver{URL: redirect.URL},
		want: []string{"302"},
	}, {
		name: "missing secret file",
		spec: v1alpha1.WebhookReceiver{URL: ok.URL, SecretFile: missing},
		want: []string{missing},
	}, {
		name: "empty secret file",
		spec: v1alpha1.WebhookReceiver{URL: ok.URL, SecretFile: writeFile(t, "empty", " \n")},
		want: []string{"empty"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			err := newReceiver(t, v1alpha1.Receiver{Webhook: &tc.spec}, 0, Options{}).Send(context.Background(), notification("n-1", linkAlert("a", false)))
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			for _, s := range tc.notWant {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains %q", err, s)
				}
			}
		})
	}
	if len(okReqs) != 0 {
		t.Errorf("webhook posted without its secret")
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		spec    v1alpha1.Receiver
		name    string // "" means an error is expected
		wantErr string
	}{
		{spec: v1alpha1.Receiver{}, wantErr: "exactly one"},
		{spec: v1alpha1.Receiver{Log: &v1alpha1.LogReceiver{}, Webhook: &v1alpha1.WebhookReceiver{URL: "http://127.0.0.1:1"}}, wantErr: "exactly one"},
		{spec: v1alpha1.Receiver{Log: &v1alpha1.LogReceiver{}}, name: "log[3]"},
		{spec: v1alpha1.Receiver{Exec: &v1alpha1.ExecCheck{Command: []string{"true"}}}, name: "exec[3]"},
		{spec: v1alpha1.Receiver{Exec: &v1alpha1.ExecCheck{}}, wantErr: "empty command"},
		{spec: v1alpha1.Receiver{Alertmanager: &v1alpha1.AlertmanagerReceiver{URL: "http://127.0.0.1:9093"}}, name: "alertmanager[3]"},
		{spec: v1alpha1.Receiver{Alertmanager: &v1alpha1.AlertmanagerReceiver{URL: "ftp://127.0.0.1"}}, wantErr: "scheme"},
		{spec: v1alpha1.Receiver{Webhook: &v1alpha1.WebhookReceiver{URL: "http://u:pw-secret@127.0.0.1:1/%zz"}}, wantErr: "invalid URL"},
		{spec: v1alpha1.Receiver{Email: &v1alpha1.EmailReceiver{Smarthost: "mail", From: "a@b", To: []string{"c@d"}}}, wantErr: "smarthost"},
		{spec: v1alpha1.Receiver{Email: &v1alpha1.EmailReceiver{Smarthost: "mail:25", From: "a@b"}}, wantErr: "no recipients"},
		{spec: v1alpha1.Receiver{Email: &v1alpha1.EmailReceiver{Smarthost: "mail:25", From: "a@b", To: []string{"c@d"}, Username: "u"}}, wantErr: "passwordFile"},
		{spec: v1alpha1.Receiver{Email: &v1alpha1.EmailReceiver{Smarthost: "mail:25", From: "a@b", To: []string{"c@d"}}}, name: "email[3]"},
	} {
		r, err := New(tc.spec, 3, Options{})
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "pw-secret") {
				t.Errorf("New(%+v) = %v, want an error with %q", tc.spec, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("New(%+v): %v", tc.spec, err)
		case r.Name() != tc.name:
			t.Errorf("Name() = %q, want %q", r.Name(), tc.name)
		}
	}
}

// TestWebhookTimeout: a peer that never answers is given up on after
// Options.Timeout.
func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	r := newReceiver(t, v1alpha1.Receiver{Webhook: &v1alpha1.WebhookReceiver{URL: srv.URL}}, 0, Options{Timeout: 100 * time.Millisecond})
	err := r.Send(context.Background(), notification("n-1", linkAlert("a", false)))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send = %v, want context.DeadlineExceeded", err)
	}
}

func TestHTTPStatusPermanence(t *testing.T) {
	for code, want := range map[int]bool{400: true, 404: true, 413: true, 408: false, 429: false, 500: false, 503: false} {
		if got := httpPermanent(code); got != want {
			t.Errorf("httpPermanent(%d) = %v, want %v", code, got, want)
		}
	}
}
