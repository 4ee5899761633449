// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package gitsource

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// SignatureHeader is where GitHub and Gitea put a push's HMAC-SHA256.
const SignatureHeader = "X-Hub-Signature-256"

// maxHookBody bounds a webhook request (GitHub caps payloads at 25 MB).
const maxHookBody = 25 << 20

// ErrBadSignature is returned for a webhook whose signature does not match.
var ErrBadSignature = errors.New("signature does not match")

// VerifySignature checks header ("sha256=<hex>", as X-Hub-Signature-256)
// against the HMAC-SHA256 of body with secret, in constant time.
func VerifySignature(secret, body []byte, header string) error {
	hexSum, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return fmt.Errorf("%s: want sha256=<hex>: %w", SignatureHeader, ErrBadSignature)
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%s: not a SHA-256 in hex: %w", SignatureHeader, ErrBadSignature)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// Webhook is the handler of POST /hooks/git: a push signed with secret (as
// GitHub and Gitea sign it) makes the source fetch at once; anything else
// is refused with 401 and changes nothing. The body is not interpreted:
// the fetch finds out what changed.
func (s *Source) Webhook(secret []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHookBody))
		if err != nil {
			http.Error(w, "request body: "+err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		if err := VerifySignature(secret, body, r.Header.Get(SignatureHeader)); err != nil {
			s.o.Log.Info("git webhook refused", "remote", r.RemoteAddr, "error", err.Error())
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		s.Trigger()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintln(w, `{"status":"fetching"}`)
	})
}
