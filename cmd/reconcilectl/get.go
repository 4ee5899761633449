// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/apiserver"
	"github.com/reconciled/reconciled/printcolumns"
	"github.com/reconciled/reconciled/resources"
)

type getOptions struct {
	output, selector, dir, sortBy string
	watch, unknown, watchEvents   bool
	// allHosts lists across the fleet, through the daemon's fleet view.
	allHosts bool
}

func newGet(g *globals) *cobra.Command {
	o := &getOptions{}
	cmd := &cobra.Command{
		Use:   "get [KIND[/NAME] | KIND NAME | all]",
		Short: "List resources with their live status",
		Example: `  reconcilectl get processes
  reconcilectl get process/pydecnet -o yaml
  reconcilectl get all -l site=hecnet
  reconcilectl get procs -w
  reconcilectl get links --dir ./resources     # no daemon: read the files`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.output == "", o.output == "wide", o.output == "yaml", o.output == "json", o.output == "name":
			case strings.HasPrefix(o.output, "jsonpath="):
				if _, err := newJSONPath(strings.TrimPrefix(o.output, "jsonpath=")); err != nil {
					return usagef("-o %s: %v", o.output, err)
				}
			default:
				return usagef("unknown output format %q (want wide, yaml, json, name or jsonpath=TEMPLATE)", o.output)
			}
			if o.sortBy != "" {
				if _, err := newJSONPath(o.sortBy); err != nil {
					return usagef("--sort-by %s: %v", o.sortBy, err)
				}
			}
			if o.watchEvents && !o.watch {
				return usagef("--output-watch-events goes with -w")
			}
			sel, err := labels.Parse(o.selector)
			if err != nil {
				return usagef("-l %q: %v", o.selector, err)
			}
			if len(args) == 1 && (args[0] == "sources" || args[0] == "source") {
				return getSources(cmd, g, o)
			}
			targets, err := parseTargets(args)
			if err != nil {
				return err
			}
			if o.unknown {
				if len(targets) != 1 || targets[0].ki.Kind != v1alpha1.KindPiNode || len(targets[0].names) != 0 {
					return usagef("--unknown lists the MACs that asked to netboot without a PiNode: get pinodes --unknown")
				}
				return getUnknown(cmd, g, o)
			}
			if o.watch {
				if len(targets) != 1 || len(targets[0].names) > 1 || o.dir != "" {
					return usagef("-w watches one kind (or one resource) through the daemon")
				}
				name := ""
				if len(targets[0].names) == 1 {
					name = targets[0].names[0]
				}
				return watchKind(cmd, g, o, targets[0].ki, name)
			}
			if o.allHosts && (o.dir != "" || o.watch) {
				return usagef("--all-hosts reads through the daemon, without -w or --dir")
			}
			src, err := newSource(g, o.dir)
			if err != nil {
				return err
			}
			if o.allHosts {
				src = fleetSource{c: src.(daemonSource).c, errOut: g.errOut}
			}
			return getTargets(g, o, src, targets, sel, len(args) == 1 && args[0] == "all")
		},
		ValidArgsFunction: completeTargets(g),
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "output format: wide, yaml, json, name or jsonpath=TEMPLATE (e.g. jsonpath='{.items[*].metadata.name}')")
	cmd.RegisterFlagCompletionFunc("output", completeOutput)
	f.StringVar(&o.sortBy, "sort-by", "", "sort by a JSONPath field, e.g. .status.restarts or {.metadata.name}")
	f.BoolVar(&o.watchEvents, "output-watch-events", false, "with -w: show the event type (ADDED, MODIFIED, DELETED) of each line")
	f.BoolVar(&absoluteTimes, "absolute-times", false, "show times in tables as RFC 3339 timestamps instead of ages")
	f.StringVarP(&o.selector, "selector", "l", "", "label selector (=, ==, !=, in, notin, exists)")
	f.BoolVarP(&o.watch, "watch", "w", false, "after listing, watch for changes")
	f.StringVar(&o.dir, "dir", "", "read resource files from this folder instead of asking the daemon")
	f.BoolVar(&o.allHosts, "all-hosts", false, "list on every host of the fleet (the Host resources), with a HOST column")
	f.BoolVar(&o.unknown, "unknown", false, "with pinodes: the MACs that asked the DHCP server for netboot without a PiNode")
	return cmd
}

// printList prints a list as JSON or YAML when output asks for one, and
// reports whether it did.
func printList(g *globals, output string, list any) (bool, error) {
	switch output {
	case "json":
		enc := json.NewEncoder(g.out)
		enc.SetIndent("", "    ")
		return true, enc.Encode(list)
	case "yaml":
		b, err := yaml.Marshal(list)
		if err == nil {
			_, err = g.out.Write(b)
		}
		return true, err
	}
	return false, nil
}

// getSources prints where the daemon's resources come from: its folder,
// or its git source with the applied commit and the last fetch.
func getSources(cmd *cobra.Command, g *globals, o *getOptions) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	var list struct {
		Items []resources.SourceStatus `json:"items"`
	}
	if err := c.getJSON(cmd.Context(), apiserver.BasePath+"/sources", &list); err != nil {
		return err
	}
	if done, err := printList(g, o.output, list); done {
		return err
	}
	tw := tabwriter.NewWriter(g.out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tURL\tBRANCH\tCOMMIT\tFETCHED\tREADY\tMESSAGE")
	for _, s := range list.Items {
		fetched, commit, branch := "-", "-", "-"
		if s.Fetched != nil {
			fetched = time.Since(*s.Fetched).Round(time.Second).String() + " ago"
		}
		if s.Commit != "" {
			commit = s.Commit[:min(12, len(s.Commit))]
		}
		if s.Branch != "" {
			branch = s.Branch
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%t\t%s\n", s.Name, s.URL, branch, commit, fetched, s.Ready, s.Message)
	}
	return tw.Flush()
}

// getUnknown prints the undeclared MACs the daemon's DHCP server has seen.
func getUnknown(cmd *cobra.Command, g *globals, o *getOptions) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	var list struct {
		Items []struct {
			MAC, VendorClass    string
			FirstSeen, LastSeen time.Time
			Count               int
		} `json:"items"`
	}
	if err := c.getJSON(cmd.Context(), apiserver.BasePath+"/unknownnodes", &list); err != nil {
		return err
	}
	if done, err := printList(g, o.output, list); done {
		return err
	}
	if len(list.Items) == 0 {
		fmt.Fprintln(g.errOut, "No unknown MACs have asked to netboot.")
		return nil
	}
	tw := tabwriter.NewWriter(g.out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "MAC\tVENDOR CLASS\tREQUESTS\tLAST SEEN")
	for _, u := range list.Items {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s ago\n", u.MAC, u.VendorClass, u.Count, time.Since(u.LastSeen).Round(time.Second))
	}
	return tw.Flush()
}

// source lists resources from the daemon or straight from files.
type source interface {
	list(ki v1alpha1.KindInfo, sel labels.Selector) ([]v1alpha1.Object, []problem, error)
	// problems lists every input problem not attached to a resource.
	problems() ([]problem, error)
}

func newSource(g *globals, dir string) (source, error) {
	if dir != "" {
		st, err := resources.NewStore(resources.Options{Dir: dir, Status: resources.StatusNone, Log: logr.Discard()})
		if err != nil {
			return nil, err
		}
		if err := st.Load(); err != nil {
			return nil, err
		}
		return dirSource{st}, nil
	}
	c, err := g.client()
	if err != nil {
		return nil, err
	}
	return daemonSource{c}, nil
}

type daemonSource struct{ c *client }

func (d daemonSource) list(ki v1alpha1.KindInfo, sel labels.Selector) ([]v1alpha1.Object, []problem, error) {
	var l wireList
	path := apiserver.BasePath + "/" + ki.Plural
	if !sel.Empty() {
		path += "?labelSelector=" + url.QueryEscape(sel.String())
	}
	if err := d.c.getJSON(bgctx(), path, &l); err != nil {
		return nil, nil, err
	}
	var out []v1alpha1.Object
	for _, raw := range l.Items {
		o, err := decodeObject(ki, raw)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, o)
	}
	return out, l.Problems, nil
}

func (d daemonSource) problems() ([]problem, error) {
	var l struct {
		Items []problem `json:"items"`
	}
	err := d.c.getJSON(bgctx(), apiserver.BasePath+"/problems", &l)
	return l.Items, err
}

// fleetSource lists a kind on every host of the fleet through the
// daemon's fleet view (GET .../fleet/{plural}); each object carries the
// reconciled.dev/host annotation, and a host that cannot be read is a
// warning, not a failure.
type fleetSource struct {
	c      *client
	errOut io.Writer
}

func (f fleetSource) list(ki v1alpha1.KindInfo, sel labels.Selector) ([]v1alpha1.Object, []problem, error) {
	var l struct {
		Items []struct {
			Host  string            `json:"host"`
			Error string            `json:"error"`
			Items []json.RawMessage `json:"items"`
		} `json:"items"`
	}
	path := apiserver.BasePath + "/fleet/" + ki.Plural
	if !sel.Empty() {
		path += "?labelSelector=" + url.QueryEscape(sel.String())
	}
	if err := f.c.getJSON(bgctx(), path, &l); err != nil {
		return nil, nil, err
	}
	var out []v1alpha1.Object
	for _, h := range l.Items {
		if h.Error != "" {
			fmt.Fprintf(f.errOut, "warning: host %s: %s\n", h.Host, h.Error)
			continue
		}
		for _, raw := range h.Items {
			o, err := decodeObject(ki, raw)
			if err != nil {
				return nil, nil, fmt.Errorf("host %s: %w", h.Host, err)
			}
			meta := o.GetObjectMeta()
			if meta.Annotations == nil {
				meta.Annotations = map[string]string{}
			}
			meta.Annotations[v1alpha1.AnnotationHost] = h.Host
			out = append(out, o)
		}
	}
	return out, nil, nil
}

func (f fleetSource) problems() ([]problem, error) { return nil, nil }

type dirSource struct{ s *resources.Store }

func (d dirSource) problems() ([]problem, error) { return d.s.Problems(), nil }

func (d dirSource) list(ki v1alpha1.KindInfo, sel labels.Selector) ([]v1alpha1.Object, []problem, error) {
	var out []v1alpha1.Object
	for _, o := range d.s.List(ki.Kind) {
		if sel.Matches(labels.Set(o.GetObjectMeta().Labels)) {
			out = append(out, o)
		}
	}
	var probs []problem
	for _, p := range d.s.Problems() {
		if p.Kind == ki.Kind || (p.Kind == "" && ki.Kind == v1alpha1.Kinds[0].Kind) {
			probs = append(probs, p)
		}
	}
	return out, probs, nil
}

// getTargets prints the resources asked for: a table per kind (or one
// list for the other formats), then, for get all, the files that define
// nothing because they are broken.
func getTargets(g *globals, o *getOptions, src source, targets []target, sel labels.Selector, all bool) error {
	var objsOut []v1alpha1.Object
	printedTables := 0
	found := false
	var missing []string
	single := len(targets) == 1 && len(targets[0].names) == 1
	for _, tg := range targets {
		objs, probs, err := src.list(tg.ki, sel)
		if err != nil {
			return err
		}
		if !all {
			for _, p := range probs {
				fmt.Fprintf(g.errOut, "warning: %s: %s\n", p.Reason, p.Message)
			}
		}
		if len(tg.names) > 0 {
			byName := map[string]v1alpha1.Object{}
			for _, obj := range objs {
				byName[obj.GetObjectMeta().Name] = obj
			}
			objs = nil
			for _, n := range tg.names {
				if obj, ok := byName[n]; ok {
					objs = append(objs, obj)
				} else {
					missing = append(missing, fmt.Sprintf("%s %q not found", tg.ki.Singular, n))
				}
			}
		}
		if len(objs) == 0 {
			continue
		}
		if o.sortBy != "" {
			if err := sortObjects(objs, o.sortBy); err != nil {
				return err
			}
		}
		found = true
		switch o.output {
		case "", "wide":
			if printedTables > 0 {
				fmt.Fprintln(g.out)
			}
			printTable(g.out, tg.ki, objs, o.output == "wide", len(targets) > 1, true, o.allHosts)
			printedTables++
		default:
			objsOut = append(objsOut, objs...)
		}
	}
	if all && (o.output == "" || o.output == "wide") {
		probs, err := src.problems()
		if err != nil {
			return err
		}
		if len(probs) > 0 {
			if printedTables > 0 {
				fmt.Fprintln(g.out)
			}
			printProblems(g.out, probs)
			found = true
		}
	}
	if !found && len(missing) == 0 && (o.output == "" || o.output == "wide") {
		fmt.Fprintln(g.errOut, "No resources found.")
		return nil
	}
	if len(objsOut) > 0 || o.output == "json" || o.output == "yaml" {
		if err := printObjects(g.out, o.output, objsOut, single); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		// Like kubectl: what was found is printed, then each miss, exit 1.
		return errors.New(strings.Join(missing, "\nerror: "))
	}
	return nil
}

// printProblems prints the files that define nothing because they are
// broken (they show nowhere else in get all): FILE:LINE, reason, message.
func printProblems(w io.Writer, probs []problem) {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "PROBLEM\tREASON\tMESSAGE")
	for _, p := range probs {
		where, msg := p.Locate()
		fmt.Fprintf(tw, "%s\t%s\t%s\n", where, p.Reason, msg)
	}
	tw.Flush()
}

func printObjects(w io.Writer, format string, objs []v1alpha1.Object, single bool) error {
	var v any = map[string]any{"apiVersion": "v1", "kind": "List", "items": objs}
	if single && len(objs) == 1 {
		v = objs[0]
	}
	if tmpl, ok := strings.CutPrefix(format, "jsonpath="); ok {
		jp, err := newJSONPath(tmpl)
		if err != nil {
			return err
		}
		data, err := generic(v)
		if err != nil {
			return err
		}
		if err := jp.Execute(w, data); err != nil {
			return fmt.Errorf("jsonpath %s: %w", tmpl, err)
		}
		return nil // like kubectl: exactly what the template prints
	}
	switch format {
	case "name":
		for _, obj := range objs {
			ki, _ := v1alpha1.LookupKind(obj.GetTypeMeta().Kind)
			fmt.Fprintf(w, "%s/%s\n", ki.Singular, obj.GetObjectMeta().Name)
		}
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "    ")
		return enc.Encode(v)
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		w.Write(b)
	}
	return nil
}

func printTable(w io.Writer, ki v1alpha1.KindInfo, objs []v1alpha1.Object, wide, prefixKind, header, hostColumn bool) {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	cols := columnsFor(ki.Kind, wide)
	if hostColumn {
		cols = append([]printcolumns.Column{printcolumns.Host}, cols...)
		prefixKind = false // the name is not the first column
	}
	if header {
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = c.Name
		}
		fmt.Fprintln(tw, strings.Join(names, "\t"))
	}
	for _, obj := range objs {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = c.Value(obj)
			if cells[i] == "" {
				cells[i] = "<none>"
			}
		}
		if prefixKind {
			cells[0] = ki.Singular + "/" + cells[0]
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

// watchKind prints the current rows, then one row per change.
func watchKind(cmd *cobra.Command, g *globals, o *getOptions, ki v1alpha1.KindInfo, name string) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	q := url.Values{"watch": {"1"}}
	if o.selector != "" {
		q.Set("labelSelector", o.selector)
	}
	if name != "" {
		q.Set("fieldSelector", "metadata.name="+name)
	}
	resp, err := c.do(cmd.Context(), http.MethodGet, apiserver.BasePath+"/"+ki.Plural+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	header := true
	for sc.Scan() {
		var ev struct {
			Type   string          `json:"type"`
			Object json.RawMessage `json:"object"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		obj, err := decodeObject(ki, ev.Object)
		if err != nil {
			return err
		}
		switch o.output {
		case "", "wide":
			if o.watchEvents {
				var b bytes.Buffer
				printTable(&b, ki, []v1alpha1.Object{obj}, o.output == "wide", false, header, false)
				for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
					if header {
						fmt.Fprintf(g.out, "%-10s %s\n", "EVENT", line)
						header = false
						continue
					}
					fmt.Fprintf(g.out, "%-10s %s\n", ev.Type, line)
				}
				break
			}
			printTable(g.out, ki, []v1alpha1.Object{obj}, o.output == "wide", false, header, false)
			header = false
		case "json":
			fmt.Fprintf(g.out, "%s\n", sc.Bytes())
		default:
			printObjects(g.out, o.output, []v1alpha1.Object{obj}, true)
			if o.output == "yaml" {
				fmt.Fprintln(g.out, "---")
			}
		}
		if f, ok := g.out.(*os.File); ok {
			f.Sync()
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("watch ended: %w", err)
	}
	return nil
}
