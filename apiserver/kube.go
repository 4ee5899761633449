// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apiserver

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"runtime"
	"strings"

	authv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/openapi"
	"github.com/reconciled/reconciled/printcolumns"
)

// The Kubernetes API conventions the real kubectl (and client-go) rely
// on: discovery (/api, /apis), /version, core/v1 Events for describe, and
// server-side Tables for get.

// registerKube adds the discovery and events routes.
func (s *Server) registerKube() {
	s.mux.HandleFunc("GET /api", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{}})
	})
	s.mux.HandleFunc("GET /api/v1", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: "v1",
			APIResources: []metav1.APIResource{{Name: "events", SingularName: "event", Namespaced: true, Kind: "Event", Verbs: []string{"get", "list"}, ShortNames: []string{"ev"}}}})
	})
	s.mux.HandleFunc("GET /api/v1/events", s.coreEvents)
	s.mux.HandleFunc("GET /api/v1/namespaces/{namespace}/events", s.coreEvents)
	s.mux.HandleFunc("GET /openapi/v3", func(w http.ResponseWriter, _ *http.Request) {
		_, openapiHash := openapi.JSON() // made on first use, not at start
		writeJSON(w, http.StatusOK, map[string]any{"paths": map[string]any{
			"apis/" + v1alpha1.APIVersion: map[string]string{"serverRelativeURL": "/openapi/v3/apis/" + v1alpha1.APIVersion + "?hash=" + openapiHash},
		}})
	})
	s.mux.HandleFunc("GET /openapi/v3/apis/"+v1alpha1.Group+"/"+v1alpha1.Version, func(w http.ResponseWriter, _ *http.Request) {
		doc, _ := openapi.JSON()
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	})
	s.mux.HandleFunc("GET /openapi/v2", func(w http.ResponseWriter, r *http.Request) {
		doc, pb := openapi.V2()
		if strings.Contains(r.Header.Get("Accept"), "protobuf") {
			// What client-go's discovery asks for.
			w.Header().Set("Content-Type", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
			w.Write(pb)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	})
	s.mux.HandleFunc("GET /apis", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: []metav1.APIGroup{apiGroup(), authzGroup()}})
	})
	s.mux.HandleFunc("GET /apis/"+authzGroupVersion, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: authzGroupVersion,
			APIResources: []metav1.APIResource{{Name: "selfsubjectaccessreviews", SingularName: "selfsubjectaccessreview", Kind: "SelfSubjectAccessReview", Verbs: []string{"create"}}}})
	})
	s.mux.HandleFunc("POST /apis/"+authzGroupVersion+"/selfsubjectaccessreviews", s.accessReview)
	s.mux.HandleFunc("GET /apis/"+v1alpha1.Group, func(w http.ResponseWriter, _ *http.Request) {
		g := apiGroup()
		g.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
		writeJSON(w, http.StatusOK, g)
	})
}

// authzGroupVersion is where kubectl auth can-i asks.
const authzGroupVersion = "authorization.k8s.io/v1"

func authzGroup() metav1.APIGroup {
	gv := metav1.GroupVersionForDiscovery{GroupVersion: authzGroupVersion, Version: "v1"}
	return metav1.APIGroup{Name: "authorization.k8s.io", Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv}
}

// authzCodecs decode and encode SelfSubjectAccessReviews in JSON or
// protobuf (kubectl's typed client sends protobuf).
var authzCodecs = func() serializer.CodecFactory {
	sc := kruntime.NewScheme()
	if err := authv1.AddToScheme(sc); err != nil {
		panic(err)
	}
	return serializer.NewCodecFactory(sc)
}()

// accessReview answers a SelfSubjectAccessReview (kubectl auth can-i)
// with what the caller may do here: reads with the read token (or none
// needed), writes, logs and secrets with the API token or over the unix
// socket.
func (s *Server) accessReview(w http.ResponseWriter, r *http.Request) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	info, ok := kruntime.SerializerInfoForMediaType(authzCodecs.SupportedMediaTypes(), ct)
	if !ok {
		writeError(w, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "a SelfSubjectAccessReview in JSON or protobuf")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	review := &authv1.SelfSubjectAccessReview{}
	if _, _, err := info.Serializer.Decode(body, nil, review); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", "a SelfSubjectAccessReview: "+err.Error())
		return
	}
	verb, sub := "", ""
	switch ra, na := review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes; {
	case ra != nil:
		verb, sub = ra.Verb, ra.Subresource
	case na != nil:
		verb = na.Verb
	}
	allowed, reason := s.mayRead(r), "reads need no token here, or the caller has it"
	switch {
	case s.privileged(r):
		allowed, reason = true, "the unix socket or the API token may do everything"
	case verb != "get" && verb != "list" && verb != "watch" || sub == "log":
		allowed, reason = false, "writes, logs and secrets need the API token (or the unix socket)"
	case !allowed:
		reason = "reads over TCP need the fleet read token or the API token"
	}
	review.Status = authv1.SubjectAccessReviewStatus{Allowed: allowed, Reason: reason}
	out, err := kruntime.Encode(authzCodecs.EncoderForVersion(info.Serializer, authv1.SchemeGroupVersion), review)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	w.Header().Set("Content-Type", info.MediaType)
	w.WriteHeader(http.StatusCreated)
	w.Write(out)
}

func apiGroup() metav1.APIGroup {
	gv := metav1.GroupVersionForDiscovery{GroupVersion: v1alpha1.APIVersion, Version: v1alpha1.Version}
	return metav1.APIGroup{Name: v1alpha1.Group, Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv}
}

// apiResources is the discovery list of our kinds: cluster-scoped, in
// the "all" category (kubectl get all), with their short names.
func apiResources() metav1.APIResourceList {
	l := metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: v1alpha1.APIVersion}
	for _, k := range v1alpha1.Kinds {
		l.APIResources = append(l.APIResources, metav1.APIResource{Name: k.Plural, SingularName: k.Singular, Kind: k.Kind, Namespaced: false,
			ShortNames: k.Short, Categories: []string{"all", "reconciled"}, Verbs: []string{"get", "list", "watch", "update", "delete"}})
	}
	return l
}

// versionInfo is /version as Kubernetes serves it (kubectl version reads
// gitVersion), with the daemon's own "version" kept for reconcilectl.
func versionInfo(version string) map[string]string {
	v := strings.TrimPrefix(version, "v")
	if v == "" || v[0] < '0' || v[0] > '9' {
		v = "0.0.0-" + v // a development build ("dev"): still a semantic version
	}
	v = "v" + v
	return map[string]string{"version": version, "gitVersion": v, "major": "", "minor": "",
		"goVersion": runtime.Version(), "compiler": runtime.Compiler, "platform": runtime.GOOS + "/" + runtime.GOARCH}
}

// coreEvents serves our events as core/v1 Events, selected as kubectl
// describe asks: fieldSelector involvedObject.kind / .name.
func (s *Server) coreEvents(w http.ResponseWriter, r *http.Request) {
	sel, err := fields.ParseSelector(r.URL.Query().Get("fieldSelector"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", "fieldSelector: "+err.Error())
		return
	}
	kind, _ := sel.RequiresExactMatch("involvedObject.kind")
	name, _ := sel.RequiresExactMatch("involvedObject.name")
	items := []map[string]any{}
	if s.opts.Events != nil {
		for _, e := range s.opts.Events.List(kind, name) {
			items = append(items, coreEvent(e))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"kind": "EventList", "apiVersion": "v1", "metadata": map[string]any{}, "items": items})
}

func coreEvent(e events.Event) map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Event",
		"metadata":       map[string]any{"name": e.Name, "creationTimestamp": e.FirstTimestamp},
		"involvedObject": map[string]any{"kind": e.Kind, "name": e.ObjectName, "apiVersion": v1alpha1.APIVersion},
		"reason":         e.Reason, "message": e.Message, "type": e.Type, "count": e.Count,
		"firstTimestamp": e.FirstTimestamp, "lastTimestamp": e.LastTimestamp,
		"source": map[string]any{"component": e.Source},
	}
}

// wantsTable reports whether the client asked for a meta.k8s.io Table, as
// kubectl get does for its default and wide output.
func wantsTable(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if strings.Contains(part, "as=Table") && strings.Contains(part, "g=meta.k8s.io") {
			return true
		}
	}
	return false
}

// writeTable answers with the kind's columns (those of reconcilectl get;
// the wide ones at priority 1) for objs; the row objects are
// PartialObjectMetadata, or the whole object with includeObject=Object.
func (s *Server) writeTable(w http.ResponseWriter, r *http.Request, ki v1alpha1.KindInfo, objs []v1alpha1.Object, rv string) {
	t, err := s.table(r, ki, objs, rv)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// table is objs as a Table.
func (s *Server) table(r *http.Request, ki v1alpha1.KindInfo, objs []v1alpha1.Object, rv string) (*metav1.Table, error) {
	cols := printcolumns.For(ki.Kind, false)
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"}, ListMeta: metav1.ListMeta{ResourceVersion: rv}, Rows: []metav1.TableRow{}}
	for _, c := range cols {
		def := metav1.TableColumnDefinition{Name: c.Name, Type: "string"}
		if c.Name == "NAME" {
			def.Format = "name"
		}
		if c.Wide {
			def.Priority = 1
		}
		t.ColumnDefinitions = append(t.ColumnDefinitions, def)
	}
	whole := r.URL.Query().Get("includeObject") == "Object"
	for _, o := range objs {
		row := metav1.TableRow{}
		for _, c := range cols {
			v := c.Value(o)
			if v == "" {
				v = "<none>"
			}
			row.Cells = append(row.Cells, v)
		}
		var obj any = partialMetadata(o)
		if whole {
			obj = o
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("encoding %s %s: %v", ki.Singular, o.GetObjectMeta().Name, err)
		}
		row.Object.Raw = b
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

// partialMetadata is an object's metadata as a meta.k8s.io
// PartialObjectMetadata (what kubectl needs of each row).
func partialMetadata(o v1alpha1.Object) metav1.PartialObjectMetadata {
	m := o.GetObjectMeta()
	pm := metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: m.Name, Generation: m.Generation, Labels: m.Labels, Annotations: m.Annotations, ResourceVersion: m.ResourceVersion}}
	if m.CreationTimestamp != nil {
		pm.CreationTimestamp = *m.CreationTimestamp
	}
	return pm
}
