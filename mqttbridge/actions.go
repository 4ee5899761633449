// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package mqttbridge

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources/apply"
)

// WriterActions implements Actions with an apply.Writer: create and remove
// write and delete <dir>/api/<kind>-<name>.yaml, start and stop set
// spec.state in that file (so resources defined in other files are refused
// with a conflict, and kinds without spec.state with a clear error), and
// restart calls RestartFunc.
type WriterActions struct {
	// Writer writes into the watched directory.
	Writer *apply.Writer
	// RestartFunc restarts kind/name now; nil refuses every restart.
	RestartFunc func(kind, name string) error
	// RestartAllFunc restarts every resource of kind that the label
	// selector matches and waits up to timeout for the outcomes; nil
	// refuses.
	RestartAllFunc func(kind, selector string, timeout time.Duration) (v1alpha1.RestartReport, error)
}

// ErrUnsupported is returned for an action a kind does not support.
var ErrUnsupported = errors.New("not supported")

// Apply implements Actions with Writer.Apply.
func (a WriterActions) Apply(kind, name string, body []byte) (apply.Result, error) {
	return a.Writer.Apply(kind, name, body)
}

// Delete implements Actions with Writer.Delete.
func (a WriterActions) Delete(kind, name string) (apply.Result, error) {
	return a.Writer.Delete(kind, name)
}

// SetState implements Actions with Writer.SetSpecField(kind, name,
// "state", state), for kinds whose spec has a state field.
func (a WriterActions) SetState(kind, name, state string) error {
	if !hasSpecField(kind, "state") {
		return fmt.Errorf("start and stop set spec.state, which a %s does not have: %w", kind, ErrUnsupported)
	}
	_, err := a.Writer.SetSpecField(kind, name, "state", state)
	return err
}

// Restart implements Actions with RestartFunc.
func (a WriterActions) Restart(kind, name string) error {
	if a.RestartFunc == nil {
		return fmt.Errorf("restart of a %s: %w", kind, ErrUnsupported)
	}
	return a.RestartFunc(kind, name)
}

// RestartAll implements Actions with RestartAllFunc.
func (a WriterActions) RestartAll(kind, selector string, timeout time.Duration) (v1alpha1.RestartReport, error) {
	if a.RestartAllFunc == nil {
		return v1alpha1.RestartReport{}, fmt.Errorf("restart of every %s: %w", strings.ToLower(kind), ErrUnsupported)
	}
	return a.RestartAllFunc(kind, selector, timeout)
}

// hasSpecField reports whether the kind's spec has a field of that JSON name.
func hasSpecField(kind, field string) bool {
	ki, ok := v1alpha1.LookupKind(kind)
	if !ok {
		return false
	}
	t := reflect.TypeOf(ki.New().GetSpec()).Elem()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if tag == field {
			return true
		}
	}
	return false
}
