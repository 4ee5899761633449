// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/internal/poe"
)

func newPiNode(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pinode",
		Short: "PiNode tools that talk to the hardware directly",
	}
	var sw, community, communityFile string
	discover := &cobra.Command{
		Use:   "discover --switch ADDR [--community C | --community-file F]",
		Short: "Print the PoE switch's MAC-to-port table (BRIDGE-MIB), to find which Pi is on which port",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sw == "" {
				return usagef("discover needs --switch ADDR (host or host:port)")
			}
			if community != "" && communityFile != "" {
				return usagef("use --community or --community-file, not both")
			}
			spec := v1alpha1.SwitchPort{Address: sw, Community: community, CommunityFile: communityFile}
			if community == "" && communityFile == "" {
				spec.Community = "public"
			}
			t, err := poe.TargetFor(spec)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			entries, err := poe.Discover(ctx, t)
			if err != nil {
				return err
			}
			return poe.FormatFDB(g.out, entries)
		},
	}
	f := discover.Flags()
	f.StringVar(&sw, "switch", "", "the switch's SNMP address (host or host:port; port 161 by default)")
	f.StringVar(&community, "community", "", "SNMP v2c community (default public)")
	f.StringVar(&communityFile, "community-file", "", "file holding the SNMP v2c community")
	cmd.AddCommand(discover)
	return cmd
}
