// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package v1alpha1 holds the daemon's settings file (reconciled --config):
// its types, their defaults (Default) and their checks (Validate), as the
// kubelet keeps its KubeletConfiguration in an API package. Decoding the
// file is the caller's (strict, with file:line: resources.DecodeStrict).
package v1alpha1

import (
	"fmt"
	"net"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Config is the daemon settings file (--config).
type Config struct {
	// Netboot configures the DHCP, TFTP and HTTP servers for PiNodes.
	Netboot *Netboot `json:"netboot,omitempty"`
	// MQTT configures the optional MQTT bridge.
	MQTT *MQTT `json:"mqtt,omitempty"`
	// Logs bounds the log store.
	Logs *Logs `json:"logs,omitempty"`
}

// Netboot is the netboot: section (see INTERFACE.md), as written.
type Netboot struct {
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
	// cycle; BootTimeout bounds Booting since the last netboot contact;
	// InstallTimeout bounds Installing since the last progress report.
	PowerOffTime   string `json:"powerOffTime,omitempty"`
	BootTimeout    string `json:"bootTimeout,omitempty"`
	InstallTimeout string `json:"installTimeout,omitempty"`
}

// MQTT is the mqtt: section.
type MQTT struct {
	Broker       string `json:"broker"`
	Username     string `json:"username,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
	TopicPrefix  string `json:"topicPrefix,omitempty"`
	TLS          bool   `json:"tls,omitempty"`
}

// Logs bounds the per-program log files of the log store.
type Logs struct {
	// MaxBytes is the size of one log file before it is rotated (default
	// 10 MiB, the log store's).
	MaxBytes int64 `json:"maxBytes,omitempty"`
}

// Netboot defaults.
const (
	DefaultDHCPPort       = 67
	DefaultTFTPPort       = 69
	DefaultLeaseTime      = time.Hour
	DefaultPowerOffTime   = 5 * time.Second
	DefaultBootTimeout    = 5 * time.Minute
	DefaultInstallTimeout = 30 * time.Minute
)

// Default fills in what the file leaves out. It is the only place the
// daemon's setting defaults are written.
func (c *Config) Default() {
	if c.Netboot != nil {
		c.Netboot.Default()
	}
}

// Default fills in the ports and durations the section leaves out.
func (n *Netboot) Default() {
	if n.DHCPPort == 0 {
		n.DHCPPort = DefaultDHCPPort
	}
	if n.TFTPPort == 0 {
		n.TFTPPort = DefaultTFTPPort
	}
	for _, d := range []struct {
		v   *string
		def time.Duration
	}{
		{&n.LeaseTime, DefaultLeaseTime}, {&n.PowerOffTime, DefaultPowerOffTime},
		{&n.BootTimeout, DefaultBootTimeout}, {&n.InstallTimeout, DefaultInstallTimeout},
	} {
		if *d.v == "" {
			*d.v = d.def.String()
		}
	}
}

// Validate checks a defaulted Config.
func (c *Config) Validate() field.ErrorList {
	var errs field.ErrorList
	if c.Logs != nil && c.Logs.MaxBytes < 0 {
		errs = append(errs, field.Invalid(field.NewPath("logs", "maxBytes"), c.Logs.MaxBytes, "must not be negative"))
	}
	if c.Netboot != nil {
		_, nerrs := c.Netboot.parse(field.NewPath("netboot"))
		errs = append(errs, nerrs...)
	}
	return errs
}

// NetbootValues is a validated netboot: section, typed.
type NetbootValues struct {
	Interface                                            string
	ServerIP, Router                                     net.IP
	Subnet                                               *net.IPNet
	LeaseTime, PowerOffTime, BootTimeout, InstallTimeout time.Duration
	TFTPRoot, HTTPAddr                                   string
	DHCPPort, TFTPPort                                   int
}

// Values returns the defaulted section typed, or what is wrong with it.
func (n *Netboot) Values() (*NetbootValues, error) {
	v, errs := n.parse(field.NewPath("netboot"))
	if len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	return v, nil
}

// parse checks the section and types its values.
func (n *Netboot) parse(p *field.Path) (*NetbootValues, field.ErrorList) {
	var errs field.ErrorList
	v := &NetbootValues{Interface: n.Interface, TFTPRoot: n.TFTPRoot, HTTPAddr: n.HTTPAddr, DHCPPort: n.DHCPPort, TFTPPort: n.TFTPPort}
	if v.Interface == "" {
		errs = append(errs, field.Required(p.Child("interface"), "the interface the Pis are on"))
	}
	if v.ServerIP = net.ParseIP(n.ServerIP).To4(); v.ServerIP == nil {
		errs = append(errs, field.Invalid(p.Child("serverIP"), n.ServerIP, "not an IPv4 address"))
	}
	_, subnet, err := net.ParseCIDR(n.Subnet)
	switch {
	case err != nil || subnet.IP.To4() == nil:
		errs = append(errs, field.Invalid(p.Child("subnet"), n.Subnet, "not an IPv4 CIDR like 172.16.7.0/24"))
	default:
		v.Subnet = subnet
		if v.ServerIP != nil && !subnet.Contains(v.ServerIP) {
			errs = append(errs, field.Invalid(p.Child("serverIP"), n.ServerIP, fmt.Sprintf("not in netboot.subnet %s", subnet)))
		}
		if n.Router != "" {
			if v.Router = net.ParseIP(n.Router).To4(); v.Router == nil || !subnet.Contains(v.Router) {
				errs = append(errs, field.Invalid(p.Child("router"), n.Router, fmt.Sprintf("not an IPv4 address in %s", subnet)))
			}
		}
	}
	for _, d := range []struct {
		name, v string
		out     *time.Duration
	}{
		{"leaseTime", n.LeaseTime, &v.LeaseTime},
		{"powerOffTime", n.PowerOffTime, &v.PowerOffTime},
		{"bootTimeout", n.BootTimeout, &v.BootTimeout},
		{"installTimeout", n.InstallTimeout, &v.InstallTimeout},
	} {
		dur, err := time.ParseDuration(d.v)
		if err != nil || dur <= 0 {
			errs = append(errs, field.Invalid(p.Child(d.name), d.v, "not a positive duration like 30s"))
		}
		*d.out = dur
	}
	if v.TFTPRoot == "" || !filepath.IsAbs(v.TFTPRoot) {
		errs = append(errs, field.Invalid(p.Child("tftpRoot"), n.TFTPRoot, "must be an absolute path"))
	}
	if _, _, err := net.SplitHostPort(v.HTTPAddr); err != nil {
		errs = append(errs, field.Invalid(p.Child("httpAddr"), n.HTTPAddr, "must be host:port"))
	}
	for _, port := range []struct {
		name string
		v    int
	}{{"dhcpPort", v.DHCPPort}, {"tftpPort", v.TFTPPort}} {
		if port.v < 1 || port.v > 65535 {
			errs = append(errs, field.Invalid(p.Child(port.name), port.v, "not a port"))
		}
	}
	return v, errs
}
