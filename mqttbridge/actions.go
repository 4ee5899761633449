// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package mqttbridge

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources/apply"
)

// WriterActions implements Actions with an apply.Writer: create and remove
// write and delete <dir>/api/<kind>-<name>.yaml, start and stop set
// spec.state in that file (so resources defined in other files are refused
// with a conflict, and kinds without spec.state with a clear error), and
// restart calls the kind's function in Restarters (RestartAllers for a
// restart by label selector); a kind without one is refused as
// unsupported.
type WriterActions struct {
	// Writer writes into the watched directory.
	Writer *apply.Writer
	// Restarters restart one resource now, by kind.
	Restarters map[string]func(name string) error
	// RestartAllers restart every resource of the kind that sel matches
	// and wait up to timeout for the outcomes, by kind.
	RestartAllers map[string]RestartAllFunc
}

// RestartAllFunc restarts every resource that sel matches and waits up to
// timeout for the outcomes.
type RestartAllFunc func(ctx context.Context, sel labels.Selector, timeout time.Duration) v1alpha1.RestartReport

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

// Restart implements Actions with the kind's Restarters function.
func (a WriterActions) Restart(kind, name string) error {
	restart := a.Restarters[kind]
	if restart == nil {
		return fmt.Errorf("restart of a %s: %w", kind, ErrUnsupported)
	}
	return restart(name)
}

// RestartAll implements Actions with the kind's RestartAllers function.
func (a WriterActions) RestartAll(kind, selector string, timeout time.Duration) (v1alpha1.RestartReport, error) {
	restartAll := a.RestartAllers[kind]
	if restartAll == nil {
		var kinds []string
		for k := range a.RestartAllers {
			kinds = append(kinds, strings.ToLower(k)+"s")
		}
		slices.Sort(kinds)
		return v1alpha1.RestartReport{}, fmt.Errorf("restart of every %s: %w (%s only)", strings.ToLower(kind), ErrUnsupported, strings.Join(kinds, ", "))
	}
	sel, err := labels.Parse(selector)
	if err != nil {
		return v1alpha1.RestartReport{}, err
	}
	return restartAll(context.Background(), sel, timeout), nil
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
