// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Command notifyprog is a test program that speaks sd_notify through
// go-systemd, exactly as a real service would.
//
//	notifyprog ready    sleep a moment, READY=1, STATUS=..., ping the watchdog forever
//	notifyprog lapse    READY=1 then stop pinging the watchdog
//	notifyprog never    never send READY=1
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

func main() {
	mode := "ready"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	fmt.Println("notifyprog starting in mode", mode)
	if mode == "never" {
		select {}
	}
	time.Sleep(200 * time.Millisecond)
	if ok, err := daemon.SdNotify(false, daemon.SdNotifyReady+"\nSTATUS=serving requests"); !ok || err != nil {
		fmt.Fprintln(os.Stderr, "sd_notify failed:", ok, err)
		os.Exit(3)
	}
	wd, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "watchdog:", err)
	}
	fmt.Println("ready; watchdog", wd)
	if mode == "lapse" || wd == 0 {
		select {}
	}
	for range time.Tick(wd / 3) {
		daemon.SdNotify(false, daemon.SdNotifyWatchdog)
	}
}
