// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reconciled/reconciled/reconcile"
)

func TestTerminalHelpers(t *testing.T) {
	base := errors.New("bad spec")
	tests := map[string]struct {
		err          error
		wantTerminal bool
		wantIsBase   bool
		wantMsg      string
	}{
		"nil":              {err: reconcile.Terminal(nil)},
		"plain":            {err: base, wantIsBase: true, wantMsg: "bad spec"},
		"terminal":         {err: reconcile.Terminal(base), wantTerminal: true, wantIsBase: true, wantMsg: "bad spec"},
		"wrapped terminal": {err: fmt.Errorf("validate: %w", reconcile.Terminal(base)), wantTerminal: true, wantIsBase: true, wantMsg: "validate: bad spec"},
		"joined terminal":  {err: errors.Join(errors.New("other"), reconcile.Terminal(base)), wantTerminal: true, wantIsBase: true, wantMsg: "other\nbad spec"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			type result struct {
				Nil, Terminal, IsBase bool
				Msg                   string
			}
			got := result{Nil: tc.err == nil, Terminal: reconcile.IsTerminal(tc.err), IsBase: errors.Is(tc.err, base)}
			if tc.err != nil {
				got.Msg = tc.err.Error()
			}
			want := result{Nil: tc.wantMsg == "", Terminal: tc.wantTerminal, IsBase: tc.wantIsBase, Msg: tc.wantMsg}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFunc(t *testing.T) {
	var got reconcile.Request
	f := reconcile.Func(func(_ context.Context, req reconcile.Request) (reconcile.Result, error) {
		got = req
		return reconcile.Result{RequeueAfter: time.Second}, nil
	})
	res, err := f.Reconcile(context.Background(), reconcile.Request{Name: "x"})
	if err != nil || res != (reconcile.Result{RequeueAfter: time.Second}) || got != (reconcile.Request{Name: "x"}) {
		t.Errorf("Func.Reconcile = %+v, %v with req %+v; want {1s}, nil with req {x}", res, err, got)
	}
}
