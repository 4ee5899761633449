// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reconciled/reconciled/resources"
)

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
