// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package mqttbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources"
)

// Commands: received from the broker, executed one at a time in order,
// answered on <prefix>/error or the command's response topic.

// receive is called by the MQTT client for every message; it must not
// block.
func (b *Bridge) receive(p *paho.Publish) {
	if p == nil {
		return
	}
	if rest, ok := strings.CutPrefix(p.Topic, b.prefix+"/status/"); ok {
		// Retained statuses sent when the bridge subscribes: clear those
		// of resources that are gone.
		if !p.Retain || len(p.Payload) == 0 {
			return
		}
		kind, name, ok := strings.Cut(rest, "/")
		ki, known := v1alpha1.LookupKind(kind)
		if ok && known && kind == ki.Singular && !strings.Contains(name, "/") {
			b.out.stale(resources.Key{Kind: ki.Kind, Name: name})
		}
		return
	}
	in := inbound{topic: p.Topic, payload: p.Payload}
	// A response topic under our prefix could make the bridge act on its
	// own reply (a command topic) or overwrite statuses: refused.
	if p.Properties != nil && p.Properties.ResponseTopic != "" && !strings.ContainsAny(p.Properties.ResponseTopic, "+#") &&
		!strings.HasPrefix(p.Properties.ResponseTopic, b.prefix+"/") {
		in.responseTopic, in.correlation = p.Properties.ResponseTopic, p.Properties.CorrelationData
	}
	select {
	case b.cmds <- in:
	default:
		b.report(in, Command{}, "", fmt.Errorf("too many commands waiting (%d): command dropped", maxInbound))
	}
}

// commandLoop executes commands one at a time.
func (b *Bridge) commandLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case in := <-b.cmds:
			cmd, err := ParseCommand(b.prefix, in.topic, in.payload)
			if err == nil && cmd.All {
				b.restartAll(ctx, in, cmd)
				continue
			}
			var result string
			if err == nil {
				result, err = b.execute(cmd)
			}
			if err != nil {
				b.log.Info("MQTT command refused", "topic", in.topic, "error", err.Error())
			} else {
				b.log.Info("MQTT command executed", "kind", cmd.Kind, "name", cmd.Name, "action", cmd.Action, "result", result)
			}
			b.report(in, cmd, result, err)
		}
	}
}

// execute runs one decoded command and returns its result word.
func (b *Bridge) execute(cmd Command) (string, error) {
	if cmd.Action != ActionCreate && !b.source.Known(cmd.Kind, cmd.Name) {
		return "", fmt.Errorf("%s %q not found", strings.ToLower(cmd.Kind), cmd.Name)
	}
	switch cmd.Action {
	case ActionCreate:
		r, err := b.actions.Apply(cmd.Kind, cmd.Name, cmd.Body)
		return string(r), err
	case ActionRemove:
		r, err := b.actions.Delete(cmd.Kind, cmd.Name)
		return string(r), err
	case ActionStart:
		return "accepted", b.actions.SetState(cmd.Kind, cmd.Name, "Running")
	case ActionStop:
		return "accepted", b.actions.SetState(cmd.Kind, cmd.Name, "Stopped")
	case ActionRestart:
		return "accepted", b.actions.Restart(cmd.Kind, cmd.Name)
	}
	return "", fmt.Errorf("unknown action %q", cmd.Action) // ParseCommand returns none
}

// restartAll starts a restart of every resource of a kind; it waits for
// the outcomes, so it runs beside the commands that follow. One runs at a
// time. Its answer (a Reply with the report) goes to the command's
// response topic, or to <prefix>/reply.
func (b *Bridge) restartAll(ctx context.Context, in inbound, cmd Command) {
	if in.responseTopic == "" {
		in.responseTopic = b.prefix + "/reply"
	}
	if !b.restartingAll.CompareAndSwap(false, true) {
		b.report(in, cmd, "", fmt.Errorf("a restart of every resource is under way; try again when its answer is out"))
		return
	}
	b.log.Info("MQTT command: restarting every resource", "kind", cmd.Kind, "selector", cmd.Selector)
	go func() {
		defer b.restartingAll.Store(false)
		rep, err := b.actions.RestartAll(cmd.Kind, cmd.Selector, cmd.Timeout)
		if ctx.Err() != nil {
			return
		}
		result := ""
		if err == nil {
			result = "restarted"
			if len(rep.Failed) > 0 {
				result = "failed"
			}
			b.log.Info("MQTT command executed", "kind", cmd.Kind, "name", cmd.Name, "action", cmd.Action,
				"restarted", len(rep.Restarted), "failed", len(rep.Failed), "skipped", len(rep.Skipped))
		}
		b.reportWith(in, cmd, result, err, &rep)
	}()
}

// ErrorReport is the JSON document published on <prefix>/error for a
// refused command.
type ErrorReport struct {
	// Topic is the command's topic.
	Topic string `json:"topic"`
	// Error says why it was refused.
	Error string `json:"error"`
	// Time is when it was refused.
	Time time.Time `json:"time"`
	// Kind, Name and Action are the command's, when its topic could be read.
	Kind   string `json:"kind,omitempty"`
	Name   string `json:"name,omitempty"`
	Action Action `json:"action,omitempty"`
}

// Reply is the JSON document published on a command's MQTT v5 response
// topic, with its correlation data.
type Reply struct {
	// Topic is the command's topic.
	Topic string `json:"topic"`
	// Kind, Name and Action are the command's, when its topic could be read.
	Kind   string `json:"kind,omitempty"`
	Name   string `json:"name,omitempty"`
	Action Action `json:"action,omitempty"`
	// Result is created, configured, unchanged, deleted or accepted; empty
	// when Error is set.
	Result string `json:"result,omitempty"`
	// Error says why the command was refused.
	Error string `json:"error,omitempty"`
	// Report is, for <kind>/all/restart, what was restarted and what
	// failed (Result is then "restarted", or "failed" when any failed).
	Report *v1alpha1.RestartReport `json:"report,omitempty"`
	// Time is when the command was executed or refused.
	Time time.Time `json:"time"`
}

// report queues the error report (when err is set) and the reply (when the
// command asked for one) of a command.
func (b *Bridge) report(in inbound, cmd Command, result string, err error) {
	b.reportWith(in, cmd, result, err, nil)
}

// reportWith is report with the report of a restart of every resource.
func (b *Bridge) reportWith(in inbound, cmd Command, result string, err error, restarts *v1alpha1.RestartReport) {
	now := b.now().UTC()
	if err != nil {
		rep := ErrorReport{Topic: in.topic, Error: err.Error(), Time: now, Kind: cmd.Kind, Name: cmd.Name, Action: cmd.Action}
		p, _ := json.Marshal(rep)
		b.out.push(message{topic: b.prefix + "/error", payload: p})
	}
	if in.responseTopic == "" {
		return
	}
	rep := Reply{Topic: in.topic, Kind: cmd.Kind, Name: cmd.Name, Action: cmd.Action, Time: now}
	if err != nil {
		rep.Error = err.Error()
	} else {
		rep.Result, rep.Report = result, restarts
	}
	p, _ := json.Marshal(rep)
	b.out.push(message{topic: in.responseTopic, payload: p,
		props: &paho.PublishProperties{CorrelationData: in.correlation, ContentType: "application/json"}})
}
