// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/apiserver"
)

// restartOptions are the flags of restart.
type restartOptions struct {
	all        bool
	selector   string
	switchPort int
	switchAddr string
	timeout    time.Duration
}

func newRestart(g *globals) *cobra.Command {
	var o restartOptions
	cmd := &cobra.Command{
		Use:   "restart (TYPE/NAME... | TYPE NAME... | TYPE --all | TYPE -l SELECTOR | pinode --switch-port N [--switch ADDR])",
		Short: "Restart programs and modules now; power-cycle Pis",
		Long: `Restart restarts a Process's program or a Module's unit now, and
power-cycles a PiNode (its switch port off, the daemon's powerOffTime, on;
no reinstall), as piman's "restart PORT" did.

  reconcilectl restart process/pydecnet
  reconcilectl restart modules --all          # every Module; waits and lists what failed
  reconcilectl restart modules -l site=ark
  reconcilectl restart pinode/pi7
  reconcilectl restart pinode --switch-port 7 [--switch 10.0.0.2]

A restart of several Modules waits for each unit to be active again (at
most --timeout) and exits 1 when any failed. Processes and PiNodes are
restarted in the background: follow them with get -w or events.`,
		ValidArgsFunction: completeTargets(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRestart(cmd, g, o, args)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.all, "all", false, "every resource of the type")
	f.StringVarP(&o.selector, "selector", "l", "", "the resources of the type whose labels match (=, ==, !=, in, notin, exists)")
	f.IntVar(&o.switchPort, "switch-port", 0, "pinode: the PiNode on this switch port (piman's restart PORT)")
	f.StringVar(&o.switchAddr, "switch", "", "pinode: with --switch-port, the switch's address, when PiNodes use several")
	f.DurationVar(&o.timeout, "timeout", time.Minute, "modules: how long a restart of several waits for the units")
	return cmd
}

// restartable are the kinds restart works on, and what it does to them.
var restartable = map[string]string{v1alpha1.KindProcess: "restarted", v1alpha1.KindModule: "restarted", v1alpha1.KindPiNode: "power cycle requested"}

func runRestart(cmd *cobra.Command, g *globals, o restartOptions, args []string) error {
	targets, err := parseTargets(args)
	if err != nil {
		return err
	}
	for _, t := range targets {
		if _, ok := restartable[t.ki.Kind]; !ok {
			return usagef("restart works on processes, modules and pinodes, not %s", t.ki.Plural)
		}
	}
	bulk := o.all || o.selector != "" || o.switchPort != 0
	if o.switchAddr != "" && o.switchPort == 0 {
		return usagef("--switch goes with --switch-port")
	}
	if o.all && o.selector != "" {
		return usagef("use --all or -l, not both")
	}
	if o.switchPort != 0 && (o.all || o.selector != "" || len(targets) != 1 || targets[0].ki.Kind != v1alpha1.KindPiNode) {
		return usagef("--switch-port works on pinodes: restart pinode --switch-port N")
	}
	if bulk && (len(targets) != 1 || len(targets[0].names) > 0) {
		return usagef("--all, -l and --switch-port take one type and no names (restart modules --all)")
	}
	if !bulk {
		for _, t := range targets {
			if len(t.names) == 0 {
				return usagef("name the %s to restart, or use --all or -l (restart %s --all)", t.ki.Plural, t.ki.Plural)
			}
		}
	}
	sel, err := labels.Parse(o.selector)
	if err != nil {
		return usagef("-l %q: %v", o.selector, err)
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	if bulk && targets[0].ki.Kind == v1alpha1.KindModule {
		return restartModules(cmd, g, c, sel, o.timeout)
	}
	if bulk {
		ki := targets[0].ki
		objs, _, err := daemonSource{c}.list(ki, sel)
		if err != nil {
			return err
		}
		if o.switchPort != 0 {
			objs, err = onSwitchPort(objs, o.switchPort, o.switchAddr)
			if err != nil {
				return err
			}
		}
		if len(objs) == 0 {
			return fmt.Errorf("no %s matched", ki.Plural)
		}
		for _, obj := range objs {
			targets[0].names = append(targets[0].names, obj.GetObjectMeta().Name)
		}
	}
	failed := 0
	for _, t := range targets {
		for _, name := range t.names {
			resp, err := c.do(cmd.Context(), http.MethodPost, apiserver.BasePath+"/"+t.ki.Plural+"/"+url.PathEscape(name)+"/restart")
			if err != nil {
				fmt.Fprintf(g.errOut, "error: %s/%s: %v\n", t.ki.Singular, name, err)
				failed++
				continue
			}
			resp.Body.Close()
			fmt.Fprintf(g.out, "%s/%s %s\n", t.ki.Singular, name, restartable[t.ki.Kind])
		}
	}
	if failed > 0 {
		return exitError{1}
	}
	return nil
}

// restartModules restarts every Module sel matches in one request, which
// answers once each unit is back (or not), and prints the outcome per
// Module.
func restartModules(cmd *cobra.Command, g *globals, c *client, sel labels.Selector, timeout time.Duration) error {
	q := url.Values{"timeout": {timeout.String()}}
	if !sel.Empty() {
		q.Set("labelSelector", sel.String())
	}
	var rep v1alpha1.RestartReport
	if err := c.postJSON(cmd.Context(), apiserver.BasePath+"/modules/restart?"+q.Encode(), &rep); err != nil {
		return err
	}
	if len(rep.Restarted)+len(rep.Failed)+len(rep.Skipped) == 0 {
		return fmt.Errorf("no modules matched")
	}
	for _, n := range rep.Restarted {
		fmt.Fprintf(g.out, "module/%s restarted\n", n)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(g.out, "module/%s skipped: %s\n", s.Name, s.Error)
	}
	for _, f := range rep.Failed {
		fmt.Fprintf(g.errOut, "error: module/%s: %s\n", f.Name, f.Error)
	}
	if len(rep.Failed) > 0 {
		return exitError{1}
	}
	return nil
}

// onSwitchPort keeps the PiNodes on the given switch port (and switch,
// when addr is set), as piman's users name their Pis. Several switches
// with that port and no addr is an error that lists them.
func onSwitchPort(objs []v1alpha1.Object, port int, addr string) ([]v1alpha1.Object, error) {
	var out []v1alpha1.Object
	var switches []string
	for _, o := range objs {
		sw := o.(*v1alpha1.PiNode).Spec.Switch
		if sw.Port != port || (addr != "" && !sameSwitch(sw.Address, addr)) {
			continue
		}
		out = append(out, o)
		if !slices.Contains(switches, sw.Address) {
			switches = append(switches, sw.Address)
		}
	}
	switch {
	case len(out) == 0 && addr != "":
		return nil, fmt.Errorf("no pinode on port %d of switch %s", port, addr)
	case len(out) == 0:
		return nil, fmt.Errorf("no pinode on switch port %d", port)
	case len(switches) > 1:
		return nil, usagef("port %d is a PiNode's on several switches (%s): say which with --switch", port, strings.Join(switches, ", "))
	}
	return out, nil
}

// sameSwitch compares a spec's switch address (host:port) with what the
// user typed (host, or host:port).
func sameSwitch(spec, typed string) bool {
	if spec == typed {
		return true
	}
	host, _, err := net.SplitHostPort(spec)
	return err == nil && host == typed
}
