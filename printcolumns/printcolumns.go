// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package printcolumns is the table of every kind: the columns
// `reconcilectl get` prints and the API serves as a Kubernetes Table (so
// `kubectl get` shows the same), with the `-o wide` ones marked.
package printcolumns

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// Column is one table column: its header, whether only `-o wide` shows
// it (priority 1 in a Kubernetes Table), and how to fill it.
type Column struct {
	Name  string
	Wide  bool
	Value func(v1alpha1.Object) string
}

// column is a column as the definitions below write it.
type column struct {
	name  string
	value func(v1alpha1.Object) string
}

// Phase is the PHASE cell: Invalid while the resource's file is invalid.
func Phase(o v1alpha1.Object) string {
	cs := o.GetCommonStatus()
	if c := cs.Condition(v1alpha1.ConditionReady); c != nil && c.Reason == v1alpha1.ReasonInvalidSpec {
		return "Invalid"
	}
	return cs.Phase
}

// Age is a time as tables show it: an age ("5m"), or with absolute an RFC
// 3339 timestamp; "" for none.
func Age(t *metav1.Time, absolute bool) string {
	if t == nil || t.IsZero() {
		return ""
	}
	if absolute {
		return t.UTC().Format(time.RFC3339)
	}
	return duration.HumanDuration(time.Since(t.Time))
}

func itoa[T int | int32 | int64](n T) string { return strconv.FormatInt(int64(n), 10) }

// Host is the HOST column of `get --all-hosts`.
var Host = Column{Name: "HOST", Value: func(o v1alpha1.Object) string { return o.GetObjectMeta().Annotations[v1alpha1.AnnotationHost] }}

// For returns the table columns of a kind, kubectl style: those of
// `-o wide` last, marked Wide. With absolute, times are timestamps instead
// of ages (get --absolute-times).
func For(kind string, absolute bool) []Column {
	age := func(t *metav1.Time) string { return Age(t, absolute) }
	colName := column{"NAME", func(o v1alpha1.Object) string { return o.GetObjectMeta().Name }}
	colPhase := column{"PHASE", Phase}
	colAge := column{"AGE", func(o v1alpha1.Object) string { return age(o.GetObjectMeta().CreationTimestamp) }}
	colReady := column{"MESSAGE", func(o v1alpha1.Object) string {
		if c := o.GetCommonStatus().Condition(v1alpha1.ConditionReady); c != nil && c.Status != metav1.ConditionTrue {
			return c.Message
		}
		return ""
	}}
	var cols, wideCols []column
	switch kind {
	case v1alpha1.KindProcess:
		p := func(o v1alpha1.Object) *v1alpha1.Process { return o.(*v1alpha1.Process) }
		cols = []column{colName, colPhase,
			{"PID", func(o v1alpha1.Object) string {
				if n := p(o).Status.Pid; n > 0 {
					return itoa(n)
				}
				return "-"
			}},
			{"RESTARTS", func(o v1alpha1.Object) string { return itoa(p(o).Status.Restarts) }},
			{"UPTIME", func(o v1alpha1.Object) string {
				if p(o).Status.Pid == 0 {
					return "-"
				}
				return age(p(o).Status.StartedAt)
			}},
			colAge}
		wideCols = append(wideCols,
			column{"LAST EXIT", func(o v1alpha1.Object) string {
				e := p(o).Status.LastExit
				if e == nil {
					return "-"
				}
				s := e.Signal
				if s == "" {
					s = "code " + itoa(e.ExitCode)
				}
				return fmt.Sprintf("%s %s ago", s, age(&e.FinishedAt))
			}},
			column{"COMMAND", func(o v1alpha1.Object) string { return strings.Join(p(o).Spec.Command, " ") }},
			colReady)
	case v1alpha1.KindLink:
		l := func(o v1alpha1.Object) *v1alpha1.Link { return o.(*v1alpha1.Link) }
		cols = []column{colName, colPhase,
			{"TARGET", func(o v1alpha1.Object) string { return linkTarget(&l(o).Spec) }},
			{"SINCE", func(o v1alpha1.Object) string { return age(l(o).Status.Since) }},
			{"TRANSITIONS", func(o v1alpha1.Object) string { return itoa(l(o).Status.Transitions) }},
			colAge}
		wideCols = append(wideCols, column{"LAST ERROR", func(o v1alpha1.Object) string { return l(o).Status.LastError }})
	case v1alpha1.KindCheck:
		c := func(o v1alpha1.Object) *v1alpha1.Check { return o.(*v1alpha1.Check) }
		cols = []column{colName,
			{"LEVEL", func(o v1alpha1.Object) string {
				if Phase(o) == "Invalid" {
					return "Invalid"
				}
				return c(o).Status.Level
			}},
			{"VALUE", func(o v1alpha1.Object) string {
				if v := c(o).Status.Value; v != nil {
					return v1alpha1.FormatValue(*v)
				}
				return "-"
			}},
			{"SINCE", func(o v1alpha1.Object) string { return age(c(o).Status.Since) }},
			colAge}
		wideCols = append(wideCols, column{"PREVIOUS", func(o v1alpha1.Object) string { return c(o).Status.PreviousLevel }},
			column{"SOURCE", func(o v1alpha1.Object) string { return checkSource(&c(o).Spec) }},
			colReady)
	case v1alpha1.KindModule:
		m := func(o v1alpha1.Object) *v1alpha1.Module { return o.(*v1alpha1.Module) }
		cols = []column{colName,
			{"UNIT", func(o v1alpha1.Object) string { return m(o).Spec.UnitName }},
			colPhase,
			{"SUB", func(o v1alpha1.Object) string { return m(o).Status.SubState }},
			{"MAINPID", func(o v1alpha1.Object) string { return itoa(m(o).Status.MainPID) }},
			colAge}
		wideCols = append(wideCols, column{"RESTARTS", func(o v1alpha1.Object) string { return itoa(m(o).Status.NRestarts) }},
			column{"STATE", func(o v1alpha1.Object) string { return m(o).Spec.State }})
	case v1alpha1.KindPiNode:
		n := func(o v1alpha1.Object) *v1alpha1.PiNode { return o.(*v1alpha1.PiNode) }
		cols = []column{colName,
			{"MAC", func(o v1alpha1.Object) string { return n(o).Spec.MAC }},
			{"IP", func(o v1alpha1.Object) string { return n(o).Spec.IP }},
			colPhase,
			{"INSTALLED", func(o v1alpha1.Object) string {
				if g := n(o).Status.InstalledGeneration; g != nil {
					return itoa(*g)
				}
				return "-"
			}},
			colAge}
		wideCols = append(wideCols, column{"LAST SEEN", func(o v1alpha1.Object) string { return age(n(o).Status.LastSeen) }},
			column{"SWITCH PORT", func(o v1alpha1.Object) string { return itoa(n(o).Spec.Switch.Port) }})
	case v1alpha1.KindHost:
		cols = []column{colName,
			{"ADDRESS", func(o v1alpha1.Object) string { return o.(*v1alpha1.Host).Spec.Address }},
			colAge}
		wideCols = append(wideCols, column{"LABELS", func(o v1alpha1.Object) string {
			return labels.Set(o.GetObjectMeta().Labels).String()
		}})
	case v1alpha1.KindAlertRoute:
		a := func(o v1alpha1.Object) *v1alpha1.AlertRoute { return o.(*v1alpha1.AlertRoute) }
		cols = []column{colName, colPhase,
			{"SENT", func(o v1alpha1.Object) string { return itoa(a(o).Status.Sent) }},
			{"FAILED", func(o v1alpha1.Object) string { return itoa(a(o).Status.Failed) }},
			{"PENDING", func(o v1alpha1.Object) string { return itoa(a(o).Status.Pending) }},
			colAge}
		wideCols = append(wideCols, column{"RECEIVERS", func(o v1alpha1.Object) string { return itoa(len(a(o).Spec.Receivers)) }})
	}
	out := make([]Column, 0, len(cols)+len(wideCols))
	for _, c := range cols {
		out = append(out, Column{Name: c.name, Value: c.value})
	}
	for _, c := range wideCols {
		out = append(out, Column{Name: c.name, Value: c.value, Wide: true})
	}
	return out
}

func linkTarget(s *v1alpha1.LinkSpec) string {
	switch {
	case s.TCP != nil:
		return "tcp://" + s.TCP.Address
	case s.ICMP != nil:
		return "icmp://" + s.ICMP.Host
	case s.HTTP != nil:
		return s.HTTP.URL
	case s.Exec != nil:
		return "exec:" + strings.Join(s.Exec.Command, " ")
	}
	return ""
}

// checkSource names a Check's source of the value for get -o wide.
func checkSource(s *v1alpha1.CheckSpec) string {
	switch {
	case s.DiskUsage != nil:
		if s.DiskUsage.Inodes {
			return "inodes " + s.DiskUsage.Path
		}
		return "disk " + s.DiskUsage.Path
	case s.Load != nil:
		return "load " + s.Load.Window
	case s.Memory != nil:
		return "memory"
	case s.Uptime != nil:
		return "uptime"
	case s.FileAge != nil:
		return "age " + s.FileAge.Path
	case s.ProcessCount != nil:
		if s.ProcessCount.Process != "" {
			return "process " + s.ProcessCount.Process
		}
		return "processes /" + s.ProcessCount.Match + "/"
	case s.Exec != nil:
		return "exec " + strings.Join(s.Exec.Command, " ")
	case s.HTTP != nil:
		return "http " + s.HTTP.URL
	}
	return ""
}
