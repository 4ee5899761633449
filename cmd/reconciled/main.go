// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Command reconciled is the daemon: it watches a directory of resource
// files and keeps reality in line with them. This package is wiring only:
// flags.go reads the command line, config.go the settings file
// (apis/config/v1alpha1), daemon.go builds the parts and hands them to the
// runner (internal/runner), listeners.go opens the API sockets and
// notify.go talks to systemd.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"

	"github.com/coreos/go-systemd/v22/daemon"
	flag "github.com/spf13/pflag"

	"github.com/reconciled/reconciled/internal/supervise"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// defaultGCPercent is the daemon's GOGC unless the environment sets one:
// bursts (10,000 programs starting) peak about 30 % lower in RSS than at
// Go's 100, at no measurable cost in time (hack/bench cold).
const defaultGCPercent = 70

func main() {
	// A supervised program with sockets passes through here first, to
	// get LISTEN_PID; it never returns then.
	supervise.RunListenShim()
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	f, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "reconciled:", err)
		os.Exit(2)
	}
	if f.showVersion {
		fmt.Println("reconciled", version)
		return
	}
	log, err := newLogger(f.logFormat, f.verbosity)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reconciled:", err)
		os.Exit(2)
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(pf)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "reconciled: --cpuprofile:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	if f.memProfile != "" {
		defer func() {
			if pf, err := os.Create(f.memProfile); err == nil {
				pprof.WriteHeapProfile(pf)
				pf.Close()
			}
		}()
	}
	if err := run(f, log); err != nil {
		log.Error(err, "reconciled failed")
		daemon.SdNotify(false, "STATUS=failed: "+err.Error())
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}
