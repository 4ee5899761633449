// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package measure

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/util/jsonpath"
)

// JSONValue takes the number at path (kubectl JSONPath, "{.queue.depth}"
// or ".queue.depth") from a JSON document; a string holding a number
// counts, and so does true (1) or false (0).
func JSONValue(doc []byte, path string) (float64, error) {
	t := strings.TrimSpace(path)
	if !strings.Contains(t, "{") {
		t = "{" + t + "}"
	}
	jp := jsonpath.New("value")
	if err := jp.Parse(t); err != nil {
		return 0, fmt.Errorf("jsonPath %s: %w", path, err)
	}
	var data any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&data); err != nil {
		return 0, fmt.Errorf("the answer is not JSON: %w", err)
	}
	results, err := jp.FindResults(data)
	if err != nil {
		return 0, fmt.Errorf("jsonPath %s: %w", path, err)
	}
	for _, r := range results {
		for _, v := range r {
			if !v.IsValid() || !v.CanInterface() {
				continue
			}
			switch x := v.Interface().(type) {
			case json.Number:
				return strconv.ParseFloat(string(x), 64)
			case string:
				if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
					return f, nil
				}
				return 0, fmt.Errorf("jsonPath %s: %q is not a number", path, clip(x))
			case bool:
				if x {
					return 1, nil
				}
				return 0, nil
			default:
				return 0, fmt.Errorf("jsonPath %s: a %T, not a number", path, x)
			}
		}
	}
	return 0, fmt.Errorf("jsonPath %s: nothing there", path)
}

// MetricValue takes the value of metric from a Prometheus text exposition:
// the first sample whose labels include every label in labels (counters,
// gauges and untyped samples; a histogram or summary gives its sum).
func MetricValue(text []byte, metric string, labels map[string]string) (float64, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return 0, fmt.Errorf("the answer is not Prometheus text: %w", err)
	}
	mf := families[metric]
	if mf == nil {
		return 0, fmt.Errorf("no metric %s in the answer", metric)
	}
	for _, m := range mf.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), nil
		case m.Counter != nil:
			return m.Counter.GetValue(), nil
		case m.Untyped != nil:
			return m.Untyped.GetValue(), nil
		case m.Histogram != nil:
			return m.Histogram.GetSampleSum(), nil
		case m.Summary != nil:
			return m.Summary.GetSampleSum(), nil
		}
	}
	return math.NaN(), fmt.Errorf("no sample of %s with labels %v", metric, labels)
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}
