// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apiserver

import (
	"html/template"
	"net/http"
	"sort"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>reconciled</title>
<style>body{font:14px system-ui,sans-serif;margin:1rem}table{border-collapse:collapse}td,th{padding:.2rem .6rem;text-align:left;border-bottom:1px solid #ddd}
.bad{color:#b00020;font-weight:600}.ok{color:#1b5e20}</style></head><body>
<h1>reconciled</h1>
<table><tr><th>Kind</th><th>Name</th><th>Phase</th><th>Ready</th><th>Message</th></tr>
{{range .}}<tr><td>{{.Kind}}</td><td>{{.Name}}</td><td class="{{if .Healthy}}ok{{else}}bad{{end}}">{{.Phase}}</td><td>{{.Ready}}</td><td>{{.Message}}</td></tr>
{{end}}</table>
<p>API: <a href="` + BasePath + `">` + BasePath + `</a> · <a href="/metrics">/metrics</a></p>
</body></html>`))

type pageRow struct {
	Kind, Name, Phase, Ready, Message string
	Healthy                           bool
}

// statusPage is a minimal server-rendered overview, unhealthy first.
func (s *Server) statusPage(w http.ResponseWriter, _ *http.Request) {
	var rows []pageRow
	for _, k := range v1alpha1.Kinds {
		for _, o := range s.opts.Store.List(k.Kind) {
			cs := o.GetCommonStatus()
			row := pageRow{Kind: k.Kind, Name: o.GetObjectMeta().Name, Phase: cs.Phase, Healthy: true}
			if c := cs.Condition(v1alpha1.ConditionReady); c != nil {
				row.Ready, row.Message = string(c.Status), c.Message
				row.Healthy = c.Status == "True"
				if c.Reason == v1alpha1.ReasonInvalidSpec {
					row.Phase = "Invalid"
				}
			}
			rows = append(rows, row)
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return !rows[i].Healthy && rows[j].Healthy })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pageTmpl.Execute(w, rows)
}
