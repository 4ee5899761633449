// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"

	config "github.com/reconciled/reconciled/apis/config/v1alpha1"
	"github.com/reconciled/reconciled/resources"
)

// ParseConfig decodes a daemon settings file strictly (unknown fields and
// wrong types are errors with file:line), defaults and validates it.
func ParseConfig(name string, data []byte) (*config.Config, error) {
	var c config.Config
	if err := resources.DecodeStrict(name, data, &c); err != nil {
		return nil, err
	}
	c.Default()
	if errs := c.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", name, errs.ToAggregate())
	}
	return &c, nil
}

// loadConfig reads --config; an empty path is an empty config.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return &config.Config{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(path, b)
}
