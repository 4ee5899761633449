// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"syscall"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/clientcmd"
)

// client-go's dynamic client and an informer (list + watch) follow the
// daemon's resources; across a daemon restart, during which a resource is
// deleted, the informer's watch is refused as too old (410) and it lists
// again: it ends in sync, the deletion included.
func TestClientGoInformer(t *testing.T) {
	k := newKubectlEnv(t)
	k.write("a.yaml", sleeper(k.env, "a", ""))
	k.start()
	cfg, err := clientcmd.BuildConfigFromFlags("", k.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "reconciled.dev", Version: "v1alpha1", Resource: "processes"}
	list, err := dc.Resource(gvr).List(context.Background(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 || list.GetResourceVersion() == "" {
		t.Fatalf("dynamic list: %v %+v", err, list)
	}
	factory := dynamicinformer.NewDynamicSharedInformerFactory(dc, 0)
	inf := factory.ForResource(gvr).Informer()
	stop := make(chan struct{})
	defer close(stop)
	go inf.Run(stop)
	names := func() []string {
		var out []string
		for _, o := range inf.GetStore().List() {
			out = append(out, o.(*unstructured.Unstructured).GetName())
		}
		sort.Strings(out)
		return out
	}
	k.eventually("the informer synced", func() bool { return inf.HasSynced() && slices.Equal(names(), []string{"a"}) })
	k.write("b.yaml", sleeper(k.env, "b", ""))
	k.eventually("the informer sees b", func() bool { return slices.Equal(names(), []string{"a", "b"}) })

	k.stop(syscall.SIGTERM)
	os.Remove(filepath.Join(k.dir, "a.yaml")) // deleted while the daemon is down
	k.start()
	k.eventually("the informer in sync after the restart (a deleted)", func() bool { return slices.Equal(names(), []string{"b"}) })
	k.write("c.yaml", sleeper(k.env, "c", ""))
	k.eventually("and watching again", func() bool { return slices.Equal(names(), []string{"b", "c"}) })
}
