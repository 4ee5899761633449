// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"

	"github.com/go-logr/logr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/internal/runner"
	"github.com/reconciled/reconciled/kubeagent"
	"github.com/reconciled/reconciled/reconcile"
	"github.com/reconciled/reconciled/resources"
)

// kubeAgent is the daemon as the agent of a Kubernetes API server
// (--kube): its clients and its source of objects.
type kubeAgent struct {
	config *rest.Config
	dyn    dynamic.Interface
	client kubernetes.Interface
	source *kubeagent.Source
}

// newKubeAgent connects (lazily: nothing is asked of the server yet, so a
// host starts while it is away) and opens the checkpoint in
// <state-dir>/kube.
func newKubeAgent(f *flags, host, stateDir string, log logr.Logger) (*kubeAgent, error) {
	if f.kube == "" {
		return nil, nil
	}
	var cfg *rest.Config
	var err error
	if f.kube == "in-cluster" {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", f.kube)
	}
	if err != nil {
		return nil, fmt.Errorf("--kube: %w", err)
	}
	cfg.UserAgent = "reconciled/" + version + " (" + host + ")"
	klog.SetLogger(log.WithName("client-go").V(1)) // client-go's retries are not the operator's concern
	a := &kubeAgent{config: cfg}
	if a.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("--kube: %w", err)
	}
	if a.client, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("--kube: %w", err)
	}
	a.source, err = kubeagent.NewSource(kubeagent.SourceOptions{Client: a.dyn, Host: host, Namespace: f.kubeNamespace,
		Dir: filepath.Join(stateDir, "kube", "objects"), Log: log.WithName("kube")})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// setup adds the agent's parts: status to the status subresources (on the
// engine), events, the heartbeat and, with --kube-hub, the hub.
func (a *kubeAgent) setup(run *runner.Runner, engine *reconcile.Engine, store *resources.Store, evStore *events.Store, f *flags, host string, log logr.Logger) error {
	pub := kubeagent.NewPublisher(store, a.source, a.dyn, a.client, host, log.WithName("kube"))
	if err := pub.SetupWithEngine(engine); err != nil {
		return err
	}
	run.Add(runner.Servers, "kube-events", runner.Func(func(ctx context.Context) error { return pub.Run(ctx, evStore) }))
	hb := &kubeagent.Heartbeat{Client: a.client, Dyn: a.dyn, Store: store, Host: host, Namespace: f.kubeNamespace,
		Address: advertised(f.listen, host), Version: version, Log: log.WithName("kube")}
	run.Add(runner.Servers, "kube-heartbeat", runner.Func(hb.Run))
	if f.kubeHub {
		hub := &kubeagent.Hub{Client: a.client, Dyn: a.dyn, Identity: host, Log: log.WithName("kube-hub")}
		run.Add(runner.Servers, "kube-hub", runner.Func(hub.Run))
	}
	return nil
}

// advertised is the API address a new Host object names: --listen, with
// the host's name for an unspecified address; "" without a TCP API.
func advertised(listen, host string) string {
	h, port, err := net.SplitHostPort(listen)
	if err != nil || listen == "" {
		return ""
	}
	if h == "" || h == "0.0.0.0" || h == "::" {
		h = host
	}
	return net.JoinHostPort(h, port)
}
