// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import "maps"

// Redacted replaces the value of an environment variable in views for
// callers that may not see secrets (the status page, API reads over TCP
// without the token).
const Redacted = "(redacted)"

// RedactSecrets returns obj, or a copy of it whose values that often hold
// secrets are replaced by Redacted: Process spec.env and Module
// spec.environment (keys stay, so a reader sees what is set). obj itself
// is never modified.
func RedactSecrets(obj Object) Object {
	switch o := obj.(type) {
	case *Process:
		if len(o.Spec.Env) == 0 {
			return obj
		}
		c := *o
		c.Spec.Env = redactValues(o.Spec.Env)
		return &c
	case *Module:
		if len(o.Spec.Environment) == 0 {
			return obj
		}
		c := *o
		c.Spec.Environment = redactValues(o.Spec.Environment)
		return &c
	}
	return obj
}

func redactValues(m map[string]string) map[string]string {
	out := maps.Clone(m)
	for k := range out {
		out[k] = Redacted
	}
	return out
}
