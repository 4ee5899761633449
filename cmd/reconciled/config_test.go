// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	config "github.com/reconciled/reconciled/apis/config/v1alpha1"
)

func TestParseConfig(t *testing.T) {
	tests := map[string]struct {
		in      string
		wantErr string
	}{
		"empty":           {in: ""},
		"netboot":         {in: "netboot:\n  interface: eth1\n  serverIP: 172.16.7.1\n  subnet: 172.16.7.0/24\n  tftpRoot: /srv/netboot\n  httpAddr: \"172.16.7.1:8070\"\n  dhcpPort: 6767\n"},
		"logs":            {in: "logs: {maxBytes: 1048576}\n"},
		"netboot subnet":  {in: "netboot: {interface: eth1, serverIP: 172.16.8.1, subnet: 172.16.7.0/24, tftpRoot: /srv, httpAddr: \":8070\"}\n", wantErr: `netboot.serverIP: Invalid value: "172.16.8.1": not in netboot.subnet 172.16.7.0/24`},
		"netboot timeout": {in: "netboot: {interface: eth1, serverIP: 172.16.7.1, subnet: 172.16.7.0/24, tftpRoot: /srv, httpAddr: \":8070\", bootTimeout: soon}\n", wantErr: "netboot.bootTimeout"},
		"netboot root":    {in: "netboot: {interface: eth1, serverIP: 172.16.7.1, subnet: 172.16.7.0/24, tftpRoot: srv, httpAddr: \":8070\"}\n", wantErr: "netboot.tftpRoot"},
		"unknown field":   {in: "netboot:\n  interfce: eth1\n", wantErr: "cfg.yaml:2: netboot.interfce: unknown field (did you mean \"interface\"?)"},
		"wrong type":      {in: "netboot:\n  dhcpPort: sixty-seven\n", wantErr: "cfg.yaml:2: netboot.dhcpPort: must be an integer"},
		"syntax":          {in: "netboot: [\n", wantErr: "cfg.yaml:1: invalid YAML"},
		"negative":        {in: "logs: {maxBytes: -1}\n", wantErr: "logs.maxBytes: Invalid value: -1: must not be negative"},
		"sources":         {in: "host: web1\nsources:\n- git: git://127.0.0.1/fleet\n  paths: [common, 'hosts/${HOST}']\n- dir: /etc/reconciled\n"},
		"source neither":  {in: "sources:\n- name: x\n", wantErr: "sources[0]: Invalid value: \"x\": needs exactly one of dir and git"},
		"source twice":    {in: "sources:\n- git: a\n- {name: git, git: b}\n", wantErr: "sources[1].name: Duplicate value: \"git\""},
		"source interval": {in: "sources:\n- {git: a, interval: often}\n", wantErr: "sources[0].interval"},
		"dir with branch": {in: "sources:\n- {dir: /x, branch: main}\n", wantErr: "settings of a git source"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseConfig("cfg.yaml", []byte(tc.in))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// FuzzParseConfig: the daemon config parser never panics and accepts only
// what re-parses the same way.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"",
		"netboot:\n  interface: eth1\n  serverIP: 172.16.7.1\n  subnet: 172.16.7.0/24\n  leaseTime: 1h\n  tftpRoot: /srv/netboot\n  httpAddr: \"172.16.7.1:8070\"\n  dhcpPort: 67\n  tftpPort: 69\n",
		"mqtt: {broker: \"tcp://127.0.0.1:1883\", username: u, passwordFile: /etc/p, topicPrefix: reconciled, tls: false}\n",
		"logs: {maxBytes: 10485760}\n",
		"netboot: &a {interface: eth1}\nmqtt: *a\n",
		"- a\n- b\n",
		"netboot:\n  dhcpPort: 99999999999999999999\n",
		"host: web1\nsources:\n- {git: 'git://h/r', paths: [common, 'hosts/${HOST}'], interval: 10s}\n- {name: local, dir: /etc/r}\n",
		"sources:\n- {git: a, interval: -1s}\n- {dir: b, verify: x}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("fuzz.yaml", data)
		if err != nil {
			if c != nil {
				t.Fatal("config returned with an error")
			}
			return
		}
		again, err := ParseConfig("fuzz.yaml", data)
		if err != nil {
			t.Fatalf("accepted once, rejected the second time: %v", err)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("parsed differently the second time: %+v, then %+v", c, again)
		}
		// What was understood, written out, reads back the same.
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal %+v: %v", c, err)
		}
		round, err := ParseConfig("round.yaml", out)
		if err != nil {
			t.Fatalf("the config written back does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(c, round) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v\n%s", c, round, out)
		}
	})
}

// The example daemon settings shipped in examples/ parse.
func TestExampleConfigs(t *testing.T) {
	paths, err := filepath.Glob("../../examples/*/*.conf")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no example configs found: %v", err)
	}
	for _, p := range paths {
		if _, err := loadConfig(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// The flags add to the sources of --config: --git is named git, --dir is
// added when given (or when nothing else is), ${HOST} is expanded.
func TestSourceSettings(t *testing.T) {
	cfg, err := ParseConfig("cfg.yaml", []byte("sources:\n- {name: local, dir: /etc/reconciled}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := parseFlags([]string{"--git", "git://h/r", "--git-path", "hosts/${HOST}", "--config", "cfg.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := sourceSettings(f, cfg, "web1")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "local" || list[1].Name != "git" || list[1].Paths[0] != "hosts/web1" || !hasGit(list) {
		t.Errorf("sources = %+v", list)
	}
	f, _ = parseFlags([]string{"--dir", "/srv/more", "--config", "cfg.yaml"})
	if _, err := sourceSettings(f, cfg, "web1"); err == nil || !strings.Contains(err.Error(), "only one folder") {
		t.Errorf("two folders: %v", err)
	}
	f, _ = parseFlags([]string{"--dir", "/srv/r"})
	if list, _ := sourceSettings(f, &config.Config{}, "h"); len(list) != 1 || list[0].Dir != "/srv/r" || hasGit(list) {
		t.Errorf("--dir alone: %+v", list)
	}
}
