// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// monitoring is the dmon story as Links: a web frontend that can be made
// slow or failing, a database port that can be closed, a ping, and routes
// per host, item and level to mail and a webhook.
var monitoring = demo{
	about: "Links to local services that you make slow or fail; mail and a webhook per host and level",
	setup: func(r *run) ([]string, []condition) {
		r.values["SMTP"] = startMailSink(r)
		r.values["Web"] = serveWeb(r)
		r.values["DB"] = serveDB(r)
		r.values["Hook"] = serveWebhook(r)
		r.writeResources()
		return nil, []condition{phaseIs("links", "web-frontend", "Up"), phaseIs("links", "db-primary", "Up")}
	},
	tryThis: func(r *run) string {
		return fmt.Sprintf(`Try:
  touch %[1]s/web-slow     # web-frontend answers in 500 ms: Degraded, a mail to web-team
  touch %[1]s/web-down     # it answers 503: Down, another mail
  rm %[1]s/web-*           # Up again: the resolution
  touch %[1]s/db-down      # the database port closes: Down, the dba webhook prints here
  rm %[1]s/db-down
  reconcilectl get links -o wide; reconcilectl events link/web-frontend`, r.dir)
	},
	exercise: func(r *run) {
		r.touch("web-slow", false)
		r.waitFor(phaseIs("links", "web-frontend", "Degraded"))
		r.touch("web-slow", true)
		r.touch("web-down", false)
		r.waitFor(receivedOne("[FIRING] Link web-frontend is Down"))
		r.touch("web-down", true)
		r.touch("db-down", false)
		r.waitFor(receivedOne("[FIRING] Link db-primary is Down"))
		r.touch("db-down", true)
	},
}

// flag reports whether the demo's control file name exists.
func (r *run) flag(name string) bool {
	_, err := os.Stat(filepath.Join(r.dir, name))
	return err == nil
}

// serve runs h on a free loopback address until the demo ends.
func serve(r *run, h http.Handler) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	r.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// serveWeb is the web frontend: /health says ok, slowly with web-slow,
// 503 with web-down.
func serveWeb(r *run) string {
	return serve(r, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.flag("web-slow") {
			time.Sleep(500 * time.Millisecond) // the slowness being demonstrated
		}
		if r.flag("web-down") {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
}

// serveDB listens on a port that closes while db-down exists.
func serveDB(r *run) string {
	addr := freeAddr(r)
	ctx := r.ctx()
	go func() {
		var l net.Listener
		for ctx.Err() == nil {
			switch down := r.flag("db-down"); {
			case down && l != nil:
				l.Close()
				l = nil
			case !down && l == nil:
				if nl, err := net.Listen("tcp", addr); err == nil {
					l = nl
					go func() {
						for {
							c, err := nl.Accept()
							if err != nil {
								return
							}
							c.Close()
						}
					}()
				}
			}
			time.Sleep(200 * time.Millisecond) // polling the control file
		}
		if l != nil {
			l.Close()
		}
	}()
	return addr
}

// serveWebhook prints the notifications it receives.
func serveWebhook(r *run) string {
	return serve(r, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		var n struct {
			Status string `json:"status"`
			Alerts []struct {
				Summary string `json:"summary"`
			} `json:"alerts"`
		}
		json.Unmarshal(b, &n)
		var sums []string
		for _, a := range n.Alerts {
			sums = append(sums, a.Summary)
		}
		subject := fmt.Sprintf("[%s] %s", strings.ToUpper(n.Status), strings.Join(sums, "; "))
		fmt.Printf("\n--- webhook %s: %s\n", req.URL.Path, subject)
		r.notified(subject)
		w.WriteHeader(http.StatusNoContent)
	}))
}
