// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/openapi"
)

func newCRDs() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "crds [--dir DIR]",
		Short: "Print the CustomResourceDefinition of every kind (for a Kubernetes API server), or write one file per kind",
		Example: `  reconcilectl crds | kubectl apply -f -
  reconcilectl crds --dir deploy/crds`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for i, k := range v1alpha1.Kinds {
				b, err := openapi.CRDYAML(k)
				if err != nil {
					return err
				}
				if dir != "" {
					if err := os.WriteFile(filepath.Join(dir, k.Plural+"."+v1alpha1.Group+".yaml"), b, 0o644); err != nil {
						return err
					}
					continue
				}
				if i > 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "---")
				}
				cmd.OutOrStdout().Write(b)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "write <plural>.reconciled.dev.yaml files into this folder instead")
	return cmd
}
