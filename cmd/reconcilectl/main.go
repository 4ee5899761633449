// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Command reconcilectl is the CLI for reconciled, shaped after kubectl.
// Exit codes: 0 success, 1 error, 2 usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// usageError marks a command-line mistake (exit code 2).
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// globals are the flags every command shares.
type globals struct {
	server, socket, tokenFile string
	out, errOut               io.Writer
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the CLI and returns its exit code.
func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{out: stdout, errOut: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(context.Background())
	if err == nil {
		return 0
	}
	if strings.HasPrefix(err.Error(), "unknown command") {
		err = usageError{err} // cobra's own: a command-line mistake too
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "error: %v\nSee 'reconcilectl --help'.\n", ue.error)
		return 2
	}
	var ex exitError
	if errors.As(err, &ex) {
		return ex.code
	}
	fmt.Fprintf(stderr, "error: %v\n", err)
	return 1
}

// exitError ends the command with a code after it printed its own output.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "reconcilectl",
		Short:         "Inspect and drive reconciled, the declarative resource reconciler",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", os.Getenv("RECONCILED_SERVER"), "daemon URL, e.g. http://127.0.0.1:9470 (env RECONCILED_SERVER); default: the unix socket")
	pf.StringVar(&g.socket, "socket", os.Getenv("RECONCILED_SOCKET"), "daemon unix socket (env RECONCILED_SOCKET; default <state-dir>/reconciled.sock)")
	pf.StringVar(&g.tokenFile, "token-file", os.Getenv("RECONCILED_TOKEN_FILE"), "bearer token file for writes over --server (env RECONCILED_TOKEN_FILE)")
	root.AddCommand(newGet(g), newDescribe(g), newEvents(g), newAlert(g), newValidate(g), newApply(g), newDelete(g), newLogs(g), newHistory(g), newCRDs(), newKubeconfig(g), newRestart(g), newReinstall(g), newPiNode(g), newVersion(g))
	return root
}

// parseRef splits KIND/NAME or KIND NAME arguments.
func parseRef(args []string) (v1alpha1.KindInfo, string, error) {
	var kind, name string
	switch len(args) {
	case 1:
		var ok bool
		kind, name, ok = strings.Cut(args[0], "/")
		if !ok {
			return v1alpha1.KindInfo{}, "", usagef("want KIND/NAME, got %q", args[0])
		}
	case 2:
		kind, name = args[0], args[1]
	default:
		return v1alpha1.KindInfo{}, "", usagef("want KIND/NAME")
	}
	ki, ok := v1alpha1.LookupKind(kind)
	if !ok {
		return ki, "", usagef("unknown resource type %q (want one of %s)", kind, strings.Join(kindChoices(), ", "))
	}
	if name == "" {
		return ki, "", usagef("a name is required: %s/NAME", ki.Singular)
	}
	return ki, name, nil
}

func kindChoices() []string {
	var out []string
	for _, k := range v1alpha1.Kinds {
		out = append(out, k.Singular)
	}
	return out
}
