// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

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
	// PowerOffTime is how long a port stays off in a reinstall's power
	// cycle (default 5s); BootTimeout bounds Booting since the last
	// netboot contact (default 5m); InstallTimeout bounds Installing since
	// the last progress report (default 30m).
	PowerOffTime   string `json:"powerOffTime,omitempty"`
	BootTimeout    string `json:"bootTimeout,omitempty"`
	InstallTimeout string `json:"installTimeout,omitempty"`
}

// Netboot is the checked netboot: section.
type Netboot struct {
	Interface                                            string
	ServerIP, Router                                     net.IP
	Subnet                                               *net.IPNet
	LeaseTime, PowerOffTime, BootTimeout, InstallTimeout time.Duration
	TFTPRoot, HTTPAddr                                   string
	DHCPPort, TFTPPort                                   int
}

// check validates the netboot: section and fills in the defaults.
func (c *NetbootConfig) check() (*Netboot, error) {
	nb := &Netboot{Interface: c.Interface, TFTPRoot: c.TFTPRoot, HTTPAddr: c.HTTPAddr, DHCPPort: c.DHCPPort, TFTPPort: c.TFTPPort}
	if nb.Interface == "" {
		return nil, fmt.Errorf("netboot.interface: required (the interface the Pis are on)")
	}
	if nb.ServerIP = net.ParseIP(c.ServerIP).To4(); nb.ServerIP == nil {
		return nil, fmt.Errorf("netboot.serverIP: %q is not an IPv4 address", c.ServerIP)
	}
	_, subnet, err := net.ParseCIDR(c.Subnet)
	if err != nil || subnet.IP.To4() == nil {
		return nil, fmt.Errorf("netboot.subnet: %q is not an IPv4 CIDR like 172.16.7.0/24", c.Subnet)
	}
	nb.Subnet = subnet
	if !subnet.Contains(nb.ServerIP) {
		return nil, fmt.Errorf("netboot.serverIP: %s is not in netboot.subnet %s", nb.ServerIP, subnet)
	}
	if c.Router != "" {
		if nb.Router = net.ParseIP(c.Router).To4(); nb.Router == nil || !subnet.Contains(nb.Router) {
			return nil, fmt.Errorf("netboot.router: %q is not an IPv4 address in %s", c.Router, subnet)
		}
	}
	for _, d := range []struct {
		name, v string
		def     time.Duration
		out     *time.Duration
	}{
		{"leaseTime", c.LeaseTime, time.Hour, &nb.LeaseTime},
		{"powerOffTime", c.PowerOffTime, 5 * time.Second, &nb.PowerOffTime},
		{"bootTimeout", c.BootTimeout, 5 * time.Minute, &nb.BootTimeout},
		{"installTimeout", c.InstallTimeout, 30 * time.Minute, &nb.InstallTimeout},
	} {
		*d.out = d.def
		if d.v == "" {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("netboot.%s: %q is not a positive duration like 30s", d.name, d.v)
		}
		*d.out = v
	}
	if nb.TFTPRoot == "" || !filepath.IsAbs(nb.TFTPRoot) {
		return nil, fmt.Errorf("netboot.tftpRoot: %q must be an absolute path", c.TFTPRoot)
	}
	if _, _, err := net.SplitHostPort(nb.HTTPAddr); err != nil {
		return nil, fmt.Errorf("netboot.httpAddr: %q must be host:port", c.HTTPAddr)
	}
	if nb.DHCPPort == 0 {
		nb.DHCPPort = 67
	}
	if nb.TFTPPort == 0 {
		nb.TFTPPort = 69
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"dhcpPort", nb.DHCPPort}, {"tftpPort", nb.TFTPPort}} {
		if p.v < 1 || p.v > 65535 {
			return nil, fmt.Errorf("netboot.%s: %d is not a port", p.name, p.v)
		}
	}
	return nb, nil
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
	if c.Netboot != nil {
		if _, err := c.Netboot.check(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
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
