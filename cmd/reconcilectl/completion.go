// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/apiserver"
)

// Shell completion (reconcilectl completion bash|zsh|fish, from cobra):
// kinds, then names asked from the daemon, and the -o formats.

// completeTargets completes KIND, KIND NAME and KIND/NAME arguments.
func completeTargets(g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if kind, prefix, ok := strings.Cut(toComplete, "/"); ok {
			ki, found := v1alpha1.LookupKind(kind)
			if !found {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, n := range names(g, ki) {
				if strings.HasPrefix(n, prefix) {
					out = append(out, kind+"/"+n)
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		}
		if len(args) == 0 {
			out := []cobra.Completion{"all"}
			for _, ki := range v1alpha1.Kinds {
				out = append(out, ki.Plural, ki.Singular)
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		}
		if ki, ok := v1alpha1.LookupKind(args[0]); ok && !strings.Contains(args[0], "/") {
			return names(g, ki), cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// names lists the resources of a kind the daemon has, or none when it
// cannot be asked quickly.
func names(g *globals, ki v1alpha1.KindInfo) []string {
	c, err := g.client()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var l struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := c.getJSON(ctx, apiserver.BasePath+"/"+ki.Plural, &l); err != nil {
		return nil
	}
	out := make([]string, 0, len(l.Items))
	for _, it := range l.Items {
		out = append(out, it.Metadata.Name)
	}
	return out
}

// outputFormats are the -o values of get.
var outputFormats = []cobra.Completion{"wide", "yaml", "json", "name", "jsonpath="}

func completeOutput(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return outputFormats, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}
