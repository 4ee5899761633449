// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	flag "github.com/spf13/pflag"
)

// flags are the daemon's command line (see INTERFACE.md).
type flags struct {
	dir, stateDir, config, listen, socket, status, logFormat, tokenFile, cpuProfile, memProfile string
	// fleetTokenFile holds the fleet read token (--fleet-token-file).
	fleetTokenFile string
	// tlsCertFile and tlsKeyFile serve the TCP API over TLS.
	tlsCertFile, tlsKeyFile                     string
	systemdRoot, systemdUnitDir, socketGroup    string
	verbosity                                   int
	apiHosts                                    []string
	stopOnExit, showVersion, allowInsecureFiles bool
	// dirSet, statusSet and hostSet say the flag was given.
	dirSet, statusSet, hostSet bool

	// host is this machine's name in the fleet (--host).
	host string
	// git, gitBranch, gitPaths and gitInterval are the git source.
	git, gitBranch, gitWebhookSecretFile, gitVerify, gitAuthFile string
	gitPaths                                                     []string
	gitInterval                                                  time.Duration
	// kube is the kubeconfig of a Kubernetes API server ("in-cluster" in
	// a pod): the daemon is that server's agent for --host.
	kube, kubeNamespace string
	// kubeHub runs the hub (templates, Lease expiry) when elected.
	kubeHub bool
}

func defaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/reconciled"
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "reconciled")
	}
	return "reconciled-state"
}

func parseFlags(args []string) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("reconciled", flag.ContinueOnError)
	fs.StringVar(&f.dir, "dir", "./resources", "resource files to watch (recursively)")
	fs.StringVar(&f.stateDir, "state-dir", defaultStateDir(), "logs, outbox, adoption records, sidecar status")
	fs.StringVar(&f.config, "config", "", "daemon settings file (netboot, mqtt, logs)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:9470", "HTTP address for the API, /metrics, /healthz, /readyz and the status page (\"\" to disable)")
	fs.StringVar(&f.socket, "socket", "", "unix-socket API for reconcilectl (default <state-dir>/reconciled.sock)")
	fs.StringVar(&f.socketGroup, "socket-group", "", "group that owns the unix socket (mode 0660), so its members may use reconcilectl (default: the daemon's group)")
	fs.StringVar(&f.status, "status", "inline", "where status is written: inline, sidecar or none")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.IntVarP(&f.verbosity, "v", "v", 0, "log verbosity (0 lifecycle, 1 decisions, 5 queue traces)")
	fs.BoolVar(&f.stopOnExit, "stop-on-exit", false, "stop supervised programs when the daemon exits (default: leave them running, to be adopted)")
	fs.StringVar(&f.tokenFile, "api-token-file", "", "file holding the bearer token that allows writes over TCP")
	fs.StringVar(&f.tlsCertFile, "tls-cert-file", "", "serve the TCP API over TLS with this certificate (PEM; with --tls-key-file): kubectl and client-go send bearer tokens only over https")
	fs.StringVar(&f.tlsKeyFile, "tls-key-file", "", "the private key of --tls-cert-file (PEM)")
	fs.StringVar(&f.fleetTokenFile, "fleet-token-file", "", "file holding the fleet read token: reads over TCP need it (or the API token), and the fleet page sends it to the other hosts")
	fs.StringArrayVar(&f.apiHosts, "api-host", nil, "a Host name the API answers to, besides localhost, IP addresses and the hostname (repeatable; other names are refused against DNS rebinding)")
	fs.StringVar(&f.systemdRoot, "systemd-root", "/", "root of the systemd instance Modules go to: its system bus, unit folder and journal are found below it (/proc/PID/root for a systemd in other namespaces)")
	fs.StringVar(&f.systemdUnitDir, "systemd-unit-dir", "", "folder for system-scope unit files (default <systemd-root>/etc/systemd/system)")
	fs.BoolVar(&f.allowInsecureFiles, "allow-insecure-files", false, "read resource files that belong to other users or are writable by group or others (whoever may write a resource file may run programs as the daemon's user)")
	fs.StringVar(&f.host, "host", hostname(), "this machine's name in the fleet (${HOST} in --git-path)")
	fs.StringVar(&f.git, "git", "", "read resources from this git repository instead of --dir (status goes to the sidecar)")
	fs.StringVar(&f.gitBranch, "git-branch", "", "the branch --git follows (default: the remote's HEAD)")
	fs.StringArrayVar(&f.gitPaths, "git-path", nil, "a folder of the repository this host reads (repeatable; ${HOST} is --host; default: all of it)")
	fs.StringVar(&f.gitWebhookSecretFile, "git-webhook-secret-file", "", "file holding the secret of POST /hooks/git (HMAC-SHA256 in X-Hub-Signature-256, as GitHub and Gitea send it): a push fetches at once")
	fs.StringVar(&f.gitAuthFile, "git-auth-file", "", "how to reach --git: an ssh private key, or a token for https (sent as basic auth, user x-access-token)")
	fs.StringVar(&f.gitVerify, "git-verify", "", "an ssh allowed-signers file: only a head commit signed by one of them (git's ssh commit signing) is applied")
	fs.DurationVar(&f.gitInterval, "git-interval", 30*time.Second, "how often --git is polled (jittered by 10 %)")
	fs.StringVar(&f.kube, "kube", "", "kubeconfig of a Kubernetes API server whose objects labelled reconciled.dev/host=<--host> this host applies (\"in-cluster\" in a pod); status, events, a Lease and the Host object go back to it")
	fs.StringVar(&f.kubeNamespace, "kube-namespace", "", "with --kube, read this namespace only (one per host lets RBAC confine each host's credentials; default: all)")
	fs.BoolVar(&f.kubeHub, "kube-hub", false, "with --kube, also run the hub when elected (one at a time): copies of reconciled.dev/hosts templates per Host, Hosts NotReady when their Lease expires")
	fs.BoolVar(&f.showVersion, "version", false, "print the version and exit")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile to this file until the daemon exits (for performance work)")
	fs.StringVar(&f.memProfile, "memprofile", "", "write a heap profile to this file when the daemon exits (for performance work)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	f.dirSet, f.statusSet, f.hostSet = fs.Changed("dir"), fs.Changed("status"), fs.Changed("host")
	if f.socket == "" {
		f.socket = filepath.Join(f.stateDir, "reconciled.sock")
	}
	if (f.kubeNamespace != "" || f.kubeHub) && f.kube == "" {
		return nil, fmt.Errorf("--kube-namespace and --kube-hub need --kube")
	}
	if !f.dirSet && f.git == "" && f.config == "" && f.kube == "" {
		if err := checkDefaultDir(f.dir); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// hostname is the machine's name, the default of --host.
func hostname() string {
	h, _ := os.Hostname()
	return h
}

// checkDefaultDir refuses the default --dir when it holds Go source: run
// from the reconciled checkout, ./resources is the store's package, and
// reading it as resource folder would be a surprise.
func checkDefaultDir(dir string) error {
	gofiles, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	if len(gofiles) > 0 {
		return fmt.Errorf("%s holds Go source (%s), not resource files: this looks like the reconciled source tree; pass --dir FOLDER (make run uses examples/quickstart)", dir, filepath.Base(gofiles[0]))
	}
	return nil
}

func newLogger(format string, verbosity int) (logr.Logger, error) {
	opts := &slog.HandlerOptions{Level: slog.Level(-verbosity), ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		// logr's V(n) is slog level -n: print it as "V1", not "DEBUG+3".
		if lvl, ok := a.Value.Any().(slog.Level); ok && a.Key == slog.LevelKey && lvl < slog.LevelInfo {
			a.Value = slog.StringValue(fmt.Sprintf("V%d", -int(lvl)))
		}
		return a
	}}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(os.Stderr, opts)
	case "json":
		h = slog.NewJSONHandler(os.Stderr, opts)
	default:
		return logr.Logger{}, fmt.Errorf("--log-format %q: want text or json", format)
	}
	return logr.FromSlogHandler(h), nil
}
