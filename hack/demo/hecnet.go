// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/smtptest"
)

// hecnet is the PyDECNET story: a program kept running with its stale
// socket removed and restarted on a config change, a Link read from its
// API, and mail when the link drops and comes back.
var hecnet = demo{
	about: "PyDECNET supervised, its link to A2RTR watched, mail through a local SMTP sink",
	setup: func(r *run) ([]string, []condition) {
		r.values["SMTP"] = startMailSink(r)
		r.writeResources()
		return nil, []condition{phaseIs("processes", "pydecnet", "Running"), phaseIs("links", "a2rtr", "Up")}
	},
	tryThis: func(r *run) string {
		return fmt.Sprintf(`Try:
  touch %[1]s/a2rtr-down      # the link drops: Down after 2 probes, one mail ([FIRING] Link a2rtr is Down)
  rm %[1]s/a2rtr-down         # back Up: a second mail ([RESOLVED] Link a2rtr is Up)
  $EDITOR %[1]s/theark.conf   # save it: PyDECNET restarts with it (restartOnChange)
  kill -9 $(pgrep -f pydecnet-standin)   # restarted at once; its stale socket is removed first
  reconcilectl describe process/pydecnet
Mail the sink receives is printed here.`, r.dir)
	},
	exercise: func(r *run) {
		r.touch("a2rtr-down", false)
		r.waitFor(receivedOne("[FIRING] Link a2rtr is Down"))
		r.touch("a2rtr-down", true)
		r.waitFor(receivedOne("[RESOLVED] Link a2rtr is Up"))
	},
}

// startMailSink runs an SMTP sink on loopback that prints what it
// receives, and returns its address.
func startMailSink(r *run) string {
	sink, err := smtptest.New(smtptest.Options{})
	if err != nil {
		r.Fatal(err)
	}
	if err := sink.Start(); err != nil {
		r.Fatal(err)
	}
	r.Cleanup(sink.Stop)
	ctx := r.ctx()
	go func() {
		seen := 0
		for ctx.Err() == nil {
			msgs := sink.Messages()
			for _, m := range msgs[seen:] {
				body := strings.SplitN(strings.TrimSpace(m.Body()), "\n", 4)
				fmt.Printf("\n--- mail to %s: %s\n    %s\n", strings.Join(m.To, ", "), m.Header("Subject"), strings.Join(body[:min(len(body), 3)], "\n    "))
				r.notified(m.Header("Subject"))
			}
			seen = len(msgs)
			time.Sleep(200 * time.Millisecond) // polling the sink's inbox
		}
	}()
	return sink.Addr()
}
