// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reconciled/reconciled/resources"
)

// sourceCollector exports reconciled_source_ready{source,type} and
// reconciled_source_last_fetch_timestamp_seconds{source}: the fleet's
// rules find a host whose source is not Ready or has not fetched lately.
type sourceCollector struct {
	status  func() []resources.SourceStatus
	ready   *prometheus.Desc
	fetched *prometheus.Desc
}

func newSourceCollector(status func() []resources.SourceStatus) *sourceCollector {
	return &sourceCollector{status: status,
		ready:   prometheus.NewDesc("reconciled_source_ready", "1 while the source is Ready (reachable, applied, every file valid), else 0.", []string{"source", "type"}, nil),
		fetched: prometheus.NewDesc("reconciled_source_last_fetch_timestamp_seconds", "When a remote source (git) last answered, in Unix seconds.", []string{"source"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.ready
	ch <- c.fetched
}

// Collect implements prometheus.Collector.
func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.status() {
		v := 0.0
		if s.Ready {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, v, s.Name, s.Type)
		if s.Fetched != nil {
			ch <- prometheus.MustNewConstMetric(c.fetched, prometheus.GaugeValue, float64(s.Fetched.UnixNano())/1e9, s.Name)
		}
	}
}

// storeCollector exports reconciled_resources{kind,phase} and
// reconciled_invalid_resources, computed from the store at scrape time.
type storeCollector struct {
	store     *resources.Store
	resources *prometheus.Desc
	invalid   *prometheus.Desc
	writes    *prometheus.Desc
}

func newStoreCollector(s *resources.Store) *storeCollector {
	return &storeCollector{
		store:     s,
		resources: prometheus.NewDesc("reconciled_resources", "Resources by kind and phase (Invalid while their file is invalid).", []string{"kind", "phase"}, nil),
		invalid:   prometheus.NewDesc("reconciled_invalid_resources", "Resources and documents that currently fail to decode or validate.", nil, nil),
		writes:    prometheus.NewDesc("reconciled_status_writes_total", "Files the status writer has written (resource files, or sidecars).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.resources
	ch <- c.invalid
	ch <- c.writes
}

// Collect implements prometheus.Collector.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	counts, invalid := c.store.Counts()
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.resources, prometheus.GaugeValue, float64(n), k.Kind, k.Name)
	}
	ch <- prometheus.MustNewConstMetric(c.invalid, prometheus.GaugeValue, float64(invalid))
	ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(c.store.Writes()))
}
