// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package gitsource

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
)

func sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func TestWebhook(t *testing.T) {
	secret := []byte("s3cret")
	s := &Source{o: Options{Log: logr.Discard()}, trigger: make(chan struct{}, 1)}
	h := s.Webhook(secret)
	body := `{"ref":"refs/heads/main"}`
	for name, tc := range map[string]struct {
		sig  string
		want int
	}{
		"signed":         {sign(secret, []byte(body)), http.StatusAccepted},
		"other secret":   {sign([]byte("guess"), []byte(body)), http.StatusUnauthorized},
		"no signature":   {"", http.StatusUnauthorized},
		"sha1 style":     {"sha1=" + strings.Repeat("0", 40), http.StatusUnauthorized},
		"short hex":      {"sha256=abcd", http.StatusUnauthorized},
		"other body sig": {sign(secret, []byte(body+" ")), http.StatusUnauthorized},
	} {
		t.Run(name, func(t *testing.T) {
			select {
			case <-s.trigger:
			default:
			}
			req := httptest.NewRequest(http.MethodPost, "/hooks/git", strings.NewReader(body))
			if tc.sig != "" {
				req.Header.Set(SignatureHeader, tc.sig)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			triggered := len(s.trigger) == 1
			if triggered != (tc.want == http.StatusAccepted) {
				t.Fatalf("triggered %v with status %d", triggered, rec.Code)
			}
		})
	}
}

// FuzzVerifySignature: any body and header; only the right HMAC passes,
// and nothing panics.
func FuzzVerifySignature(f *testing.F) {
	secret := []byte("s3cret")
	f.Add([]byte(`{"ref":"refs/heads/main"}`), sign(secret, []byte(`{"ref":"refs/heads/main"}`)))
	f.Add([]byte(""), "sha256=")
	f.Add([]byte("x"), "sha256="+strings.Repeat("zz", 32))
	f.Add([]byte("x"), "SHA256="+strings.Repeat("00", 32))
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		err := VerifySignature(secret, body, header)
		if want := sign(secret, body); (err == nil) != (strings.EqualFold(header, want) && strings.HasPrefix(header, "sha256=")) {
			t.Fatalf("VerifySignature(%q, %q) = %v", body, header, err)
		}
		if err != nil && !errors.Is(err, ErrBadSignature) {
			t.Fatalf("error %v is not ErrBadSignature", err)
		}
	})
}
