// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/apiserver"
	"github.com/reconciled/reconciled/internal/regularfile"
	"github.com/reconciled/reconciled/printcolumns"
	"github.com/reconciled/reconciled/resources"
)

func newValidate(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate PATH...",
		Short: "Check resource files offline; prints FILE:LINE: message, exit 1 if anything is invalid",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("validate needs at least one file or folder")
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			files, err := collectFiles(args)
			if err != nil {
				return err
			}
			bad, total, badFiles := 0, 0, 0
			seen := map[resources.Key]string{}
			for _, f := range files {
				data, _, err := regularfile.Read(f, resources.MaxFileSize)
				if err != nil {
					fmt.Fprintf(g.out, "%s: %v\n", f, unwrapPath(err))
					badFiles++
					continue
				}
				docs, err := resources.DecodeFile(f, data)
				if err != nil {
					fmt.Fprintln(g.out, err)
					badFiles++
					continue
				}
				for _, d := range docs {
					total++
					for _, e := range d.Errs {
						fmt.Fprintln(g.out, e)
					}
					if len(d.Errs) > 0 {
						bad++
						continue
					}
					k := resources.Key{Kind: d.Kind, Name: d.Name}
					here := fmt.Sprintf("%s:%d", d.File, d.Line)
					if prev, dup := seen[k]; dup {
						fmt.Fprintf(g.out, "%s: %s: %s %q is already defined at %s\n", here, v1alpha1.ReasonDuplicateName, d.Kind, d.Name, prev)
						bad++
						continue
					}
					seen[k] = here
				}
			}
			if bad > 0 || badFiles > 0 {
				var parts []string
				if badFiles > 0 {
					parts = append(parts, fmt.Sprintf("%d of %d files unreadable or not YAML", badFiles, len(files)))
				}
				if bad > 0 || total > 0 {
					parts = append(parts, fmt.Sprintf("%d of %d resources invalid", bad, total))
				}
				fmt.Fprintln(g.errOut, strings.Join(parts, "; "))
				return exitError{1}
			}
			fmt.Fprintf(g.out, "%d resources in %d files are valid\n", total, len(files))
			return nil
		},
	}
}

// unwrapPath drops the path of a *fs.PathError (the caller prints it).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// collectFiles expands folders into the resource files the daemon would read.
func collectFiles(args []string) ([]string, error) {
	var files []string
	for _, a := range args {
		fi, err := os.Stat(a)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file or folder", a)
		}
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			files = append(files, a)
			continue
		}
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(a, p)
			if d.IsDir() {
				if rel != "." && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !resources.Ignored(rel) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(files)
	return files, nil
}

func newLogs(g *globals) *cobra.Command {
	var follow, previous bool
	var tail int
	cmd := &cobra.Command{
		Use:   "logs [process/]NAME | module/NAME",
		Short: "Print the output of a supervised program, or the journal of a module's unit",
		Example: `  reconcilectl logs ticker -f            # a Process, like kubectl logs POD
  reconcilectl logs module/sensor-reader --tail 50`,
		ValidArgsFunction: completeTargets(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && !strings.Contains(args[0], "/") {
				args = []string{"process/" + args[0]} // kubectl logs NAME: the kind that has logs
			}
			ki, name, err := parseRef(args)
			if err != nil {
				return err
			}
			q := url.Values{"tail": {strconv.Itoa(tail)}}
			switch ki.Kind {
			case v1alpha1.KindProcess:
				if follow && previous {
					return usagef("-f and --previous do not go together: the previous run has ended")
				}
				if follow {
					q.Set("follow", "1")
				}
				if previous {
					q.Set("previous", "1")
				}
			case v1alpha1.KindModule:
				if follow || previous {
					return usagef("-f and --previous are not supported for modules: use journalctl -u UNIT")
				}
			default:
				return usagef("logs works on processes and modules")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), http.MethodGet, apiserver.BasePath+"/"+ki.Plural+"/"+url.PathEscape(name)+"/log?"+q.Encode())
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, err = io.Copy(g.out, resp.Body)
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output (processes)")
	cmd.Flags().BoolVarP(&previous, "previous", "p", false, "the output of the run before the last restart (processes)")
	cmd.Flags().IntVar(&tail, "tail", -1, "lines of recent output to show (-1: all for processes, 100 for modules)")
	return cmd
}

func newReinstall(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reinstall pinode/NAME",
		Short: "Power-cycle a PiNode and install its image again, as if its installGeneration had been bumped",
		RunE: func(cmd *cobra.Command, args []string) error {
			ki, name, err := parseRef(args)
			if err != nil {
				return err
			}
			if ki.Kind != v1alpha1.KindPiNode {
				return usagef("reinstall works on pinodes, not %s", ki.Plural)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), http.MethodPost, apiserver.BasePath+"/pinodes/"+url.PathEscape(name)+"/reinstall")
			if err != nil {
				return err
			}
			resp.Body.Close()
			fmt.Fprintf(g.out, "pinode/%s reinstall requested\n", name)
			return nil
		},
	}
}

func newVersion(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the client and server versions",
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(g.out, "Client Version: %s\n", version)
			c, err := g.client()
			if err != nil {
				return err
			}
			var v struct{ Version string }
			if err := c.getJSON(cmd.Context(), "/version", &v); err != nil {
				fmt.Fprintf(g.out, "Server Version: unavailable (%v)\n", err)
				return nil
			}
			fmt.Fprintf(g.out, "Server Version: %s\n", v.Version)
			return nil
		},
	}
}

func newDescribe(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "describe KIND [NAME...] | KIND/NAME...",
		Short: "Show resources' spec, status, conditions and events (all of a kind without a name)",
		Example: `  reconcilectl describe process/pydecnet
  reconcilectl describe links                # every Link
  reconcilectl describe process/web link/a2rtr`,
		ValidArgsFunction: completeTargets(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			targets, err := parseTargets(args)
			if err != nil {
				return err
			}
			var src source
			var c *client
			if dir != "" {
				if src, err = newSource(g, dir); err != nil {
					return err
				}
			} else {
				if c, err = g.client(); err != nil {
					return err
				}
				src = daemonSource{c}
			}
			var missing []string
			first := true
			for _, tg := range targets {
				objs, _, err := src.list(tg.ki, labels.Everything())
				if err != nil {
					return err
				}
				byName := map[string]v1alpha1.Object{}
				for _, o := range objs {
					byName[o.GetObjectMeta().Name] = o
				}
				names := tg.names
				if len(names) == 0 {
					for _, o := range objs {
						names = append(names, o.GetObjectMeta().Name)
					}
				}
				for _, name := range names {
					obj, ok := byName[name]
					if !ok {
						missing = append(missing, fmt.Sprintf("%s %q not found", tg.ki.Singular, name))
						continue
					}
					if !first {
						fmt.Fprintln(g.out) // kubectl separates objects with a blank line
					}
					first = false
					describe(g.out, tg.ki, obj)
					if c != nil {
						describeLive(cmd.Context(), g.out, c, tg.ki, name)
					}
				}
			}
			if len(missing) > 0 {
				return errors.New(strings.Join(missing, "\nerror: "))
			}
			if first {
				fmt.Fprintln(g.errOut, "No resources found.")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "read resource files from this folder instead of asking the daemon")
	return cmd
}

// describeLive prints what only the daemon knows about a resource: probe
// history, the unit's journal, events.
func describeLive(ctx context.Context, w io.Writer, c *client, ki v1alpha1.KindInfo, name string) {
	if ki.Kind == v1alpha1.KindLink {
		var l liveLink
		if err := c.getJSON(ctx, apiserver.BasePath+"/links/"+url.PathEscape(name)+"/live", &l); err == nil {
			describeProbes(w, l)
		}
	}
	if ki.Kind == v1alpha1.KindModule {
		describeJournal(ctx, w, c, name)
	}
	if ki.Kind == v1alpha1.KindCheck {
		var h apiserver.CheckHistory
		var chk v1alpha1.Check
		if c.getJSON(ctx, apiserver.BasePath+"/checks/"+url.PathEscape(name)+"/history?range=hour", &h) == nil &&
			c.getJSON(ctx, apiserver.BasePath+"/checks/"+url.PathEscape(name), &chk) == nil {
			fmt.Fprintln(w, "History (last hour):")
			printCheckChart(w, &chk, h)
		}
	}
	evs, err := fetchEvents(ctx, c, ki.Kind, name)
	if err != nil {
		fmt.Fprintf(w, "Events:\n  <unavailable: %v>\n", err)
		return
	}
	describeEvents(w, evs)
}

// describe prints a kubectl-describe-like view.
func describe(w io.Writer, ki v1alpha1.KindInfo, obj v1alpha1.Object) {
	m := obj.GetObjectMeta()
	fmt.Fprintf(w, "Name:         %s\nKind:         %s\n", m.Name, ki.Kind)
	fmt.Fprintf(w, "Generation:   %d\n", m.Generation)
	if src := m.Annotations[resources.AnnotationSource]; src != "" {
		fmt.Fprintf(w, "Source:       %s\n", src)
	}
	fmt.Fprintf(w, "Labels:       %s\n", kv(m.Labels, ""))
	fmt.Fprintf(w, "Annotations:  %s\n", kv(m.Annotations, resources.AnnotationSource))
	cs := obj.GetCommonStatus()
	fmt.Fprintf(w, "Phase:        %s\n", orNone(printcolumns.Phase(obj)))
	if pr, ok := obj.(*v1alpha1.Process); ok {
		describeProcessLive(w, pr, time.Now())
	}
	section := func(title string, v any) {
		b, _ := yaml.Marshal(v)
		fmt.Fprintf(w, "%s:\n", title)
		for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	section("Spec", obj.GetSpec())
	st := map[string]any{}
	b, _ := json.Marshal(obj.GetStatus())
	json.Unmarshal(b, &st)
	delete(st, "conditions")
	section("Status", st)
	fmt.Fprintln(w, "Conditions:")
	if len(cs.Conditions) == 0 {
		fmt.Fprintln(w, "  <none>")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  Type\tStatus\tReason\tAge\tMessage")
	fmt.Fprintln(tw, "  ----\t------\t------\t---\t-------")
	for _, c := range cs.Conditions {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, age(&c.LastTransitionTime), c.Message)
	}
	tw.Flush()
}

func kv(m map[string]string, skip string) string {
	var parts []string
	for k, v := range m {
		if k != skip {
			parts = append(parts, k+"="+v)
		}
	}
	if len(parts) == 0 {
		return "<none>"
	}
	sort.Strings(parts)
	return strings.Join(parts, "\n              ")
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// describeJournal prints the last lines of a module's unit journal.
func describeJournal(ctx context.Context, w io.Writer, c *client, name string) {
	fmt.Fprintln(w, "Journal:")
	resp, err := c.do(ctx, http.MethodGet, apiserver.BasePath+"/modules/"+url.PathEscape(name)+"/log?tail=10")
	if err != nil {
		fmt.Fprintf(w, "  <unavailable: %v>\n", err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	text := strings.TrimRight(string(b), "\n")
	if text == "" {
		fmt.Fprintln(w, "  <none>")
		return
	}
	for _, l := range strings.Split(text, "\n") {
		fmt.Fprintf(w, "  %s\n", l)
	}
}

// describeProcessLive prints a program's live figures: how long it has been
// up, its restarts, and how its last run ended.
func describeProcessLive(w io.Writer, pr *v1alpha1.Process, now time.Time) {
	st := pr.Status
	if st.Phase == v1alpha1.ProcessRunning && st.StartedAt != nil {
		fmt.Fprintf(w, "Uptime:       %s (pid %d, since %s)\n", now.Sub(st.StartedAt.Time).Round(time.Second), st.Pid, st.StartedAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "Restarts:     %d\n", st.Restarts)
	if e := st.LastExit; e != nil {
		how := fmt.Sprintf("exit code %d", e.ExitCode)
		if e.Signal != "" {
			how = "killed by " + e.Signal
		}
		if e.Reason != "" {
			how += " (" + e.Reason + ")"
		}
		fmt.Fprintf(w, "Last exit:    %s, %s ago\n", how, now.Sub(e.FinishedAt.Time).Round(time.Second))
	}
}
