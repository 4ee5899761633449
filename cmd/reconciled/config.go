// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"

	"github.com/reconciled/reconciled/resources"
)

// Config is the daemon settings file (--config).
type Config struct {
	// Netboot configures the DHCP, TFTP and HTTP servers for PiNodes.
	Netboot *NetbootConfig `json:"netboot,omitempty"`
	// MQTT configures the optional MQTT bridge.
	MQTT *MQTTConfig `json:"mqtt,omitempty"`
	// Logs bounds the log store.
	Logs *LogsConfig `json:"logs,omitempty"`
}

// NetbootConfig is the netboot: section (see INTERFACE.md).
type NetbootConfig struct {
	Interface string `json:"interface"`
	ServerIP  string `json:"serverIP"`
	Subnet    string `json:"subnet"`
	Router    string `json:"router,omitempty"`
	LeaseTime string `json:"leaseTime,omitempty"`
	TFTPRoot  string `json:"tftpRoot"`
	HTTPAddr  string `json:"httpAddr"`
	DHCPPort  int    `json:"dhcpPort,omitempty"`
	TFTPPort  int    `json:"tftpPort,omitempty"`
}

// MQTTConfig is the mqtt: section.
type MQTTConfig struct {
	Broker       string `json:"broker"`
	Username     string `json:"username,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
	TopicPrefix  string `json:"topicPrefix,omitempty"`
	TLS          bool   `json:"tls,omitempty"`
}

// LogsConfig bounds the per-program log files of the log store.
type LogsConfig struct {
	// MaxBytes is the size of one log file before it is rotated (default 10 MiB).
	MaxBytes int64 `json:"maxBytes,omitempty"`
}

// ParseConfig decodes a daemon settings file strictly: unknown fields and
// wrong types are errors with file:line.
func ParseConfig(name string, data []byte) (*Config, error) {
	var c Config
	if err := resources.DecodeStrict(name, data, &c); err != nil {
		return nil, err
	}
	if c.Logs != nil && c.Logs.MaxBytes < 0 {
		return nil, fmt.Errorf("%s: logs.maxBytes: must not be negative", name)
	}
	return &c, nil
}

// loadConfig reads --config; an empty path is an empty config.
func loadConfig(path string) (*Config, error) {
	if path == "" {
		return &Config{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(path, b)
}
