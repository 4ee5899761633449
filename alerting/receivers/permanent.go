// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package receivers

import (
	"errors"
	"net/textproto"
)

// PermanentError marks a notification the peer rejected for good: sending
// it again would get the same answer (HTTP 4xx other than 408 and 429, an
// SMTP 5xx for a recipient or the message). The outbox drops it instead of
// retrying it forever ahead of what follows.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() + " (rejected for good, not retried)" }

// Unwrap returns the peer's error.
func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is or wraps a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// httpPermanent reports whether an HTTP status rejects a request for good.
func httpPermanent(code int) bool {
	return code >= 400 && code < 500 && code != 408 && code != 429
}

// smtpPermanent wraps err as permanent when the server answered 5xx.
func smtpPermanent(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return &PermanentError{Err: err}
	}
	return err
}
