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
	// Host is this machine's name in the fleet (as --host).
	Host string `json:"host,omitempty"`
	// Sources are where resources come from (as --dir and --git; the
	// flags add to them).
	Sources []Source `json:"sources,omitempty"`
}

// Source is one entry of sources:, exactly one of dir and git.
type Source struct {
	// Name names the source in `reconcilectl get sources` and its webhook
	// (POST /hooks/NAME); default "dir", "git", then "git-2"...
	Name string `json:"name,omitempty"`
	// Dir is a folder of resource files (as --dir).
	Dir string `json:"dir,omitempty"`
	// Git is a repository URL (as --git); the fields below are its
	// --git-* flags.
	Git               string   `json:"git,omitempty"`
	Branch            string   `json:"branch,omitempty"`
	Paths             []string `json:"paths,omitempty"`
	Interval          string   `json:"interval,omitempty"`
	AuthFile          string   `json:"authFile,omitempty"`
	Verify            string   `json:"verify,omitempty"`
	WebhookSecretFile string   `json:"webhookSecretFile,omitempty"`
}

// DefaultGitInterval is how often a git source is polled.
const DefaultGitInterval = 30 * time.Second

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
	gits := 0
	for i := range c.Sources {
		src := &c.Sources[i]
		if src.Git != "" && src.Interval == "" {
			src.Interval = DefaultGitInterval.String()
		}
		if src.Name != "" {
			continue
		}
		switch {
		case src.Dir != "":
			src.Name = "dir"
		case src.Git != "":
			if gits++; gits == 1 {
				src.Name = "git"
			} else {
				src.Name = fmt.Sprintf("git-%d", gits)
			}
		}
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
	names := map[string]bool{}
	for i, src := range c.Sources {
		p := field.NewPath("sources").Index(i)
		switch {
		case (src.Dir == "") == (src.Git == ""):
			errs = append(errs, field.Invalid(p, src.Name, "needs exactly one of dir and git"))
		case src.Dir != "" && (src.Branch != "" || len(src.Paths) > 0 || src.AuthFile != "" || src.Verify != "" || src.WebhookSecretFile != ""):
			errs = append(errs, field.Invalid(p, src.Name, "branch, paths, authFile, verify and webhookSecretFile are settings of a git source"))
		}
		if names[src.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), src.Name))
		}
		names[src.Name] = true
		if src.Git != "" {
			if d, err := time.ParseDuration(src.Interval); err != nil || d <= 0 {
				errs = append(errs, field.Invalid(p.Child("interval"), src.Interval, "must be a positive duration (30s)"))
			}
		}
	}
	return errs
}

// GitInterval returns the parsed interval of a validated git source.
func (s *Source) GitInterval() time.Duration {
	d, _ := time.ParseDuration(s.Interval)
	return d
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
