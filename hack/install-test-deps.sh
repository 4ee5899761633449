#!/usr/bin/env bash
# Installs what `make test` needs when it is missing: Go modules, and the
# Debian packages the end-to-end tests use as real peers.
set -euo pipefail
cd "$(dirname "$0")/.."
go mod download
need=()
[ -x /usr/bin/python3 ] || need+=(python3)
# The sd_notify e2e test runs a program written against pystemd, unchanged,
# with the python3 programs get (/usr/bin's, Debian's: the first python3 on
# a developer's PATH may be another one, without Debian's packages).
/usr/bin/python3 -c 'import pystemd.daemon' 2>/dev/null || need+=(python3-pystemd)
# The AlertRoute e2e test delivers to a real Alertmanager.
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
# The metrics tests lint /metrics with promtool and scrape the daemon with a real Prometheus.
command -v promtool >/dev/null || need+=(prometheus)
# The kubectl tests drive the real kubectl against the daemon.
command -v kubectl >/dev/null || need+=(kubernetes-client)
# The status page test loads the page in headless Chromium.
command -v chromium >/dev/null || need+=(chromium)
# The MQTT bridge tests talk to a real mosquitto (and its command-line clients).
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || need+=(mosquitto)
command -v mosquitto_pub >/dev/null || need+=(mosquitto-clients)
# The git source tests pull from real repositories.
command -v git >/dev/null || need+=(git)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
# Network-namespace and socket-activation tests.
command -v ip >/dev/null || need+=(iproute2)
command -v systemd-socket-activate >/dev/null || need+=(systemd)
# The Module tests boot a real systemd with its own system bus (hack/systemd-sandbox.sh).
command -v dbus-daemon >/dev/null || need+=(dbus)
command -v nsenter >/dev/null || need+=(util-linux)
# The PiNode tests: DHCP clients, TFTP and DHCP peers for the benchmarks, snmpd as a PoE switch.
command -v busybox >/dev/null || need+=(busybox)
command -v udhcpc >/dev/null || need+=(udhcpc)
command -v dhclient >/dev/null || need+=(isc-dhcp-client)
command -v perfdhcp >/dev/null || need+=(kea-admin)
command -v dnsmasq >/dev/null || need+=(dnsmasq)
command -v in.tftpd >/dev/null || need+=(tftpd-hpa)
command -v curl >/dev/null || need+=(curl)
command -v atftp >/dev/null || need+=(atftp)
command -v strace >/dev/null || need+=(strace)
command -v snmpd >/dev/null || need+=(snmpd)
command -v snmpget >/dev/null || need+=(snmp)
# The QEMU netboot test: an x86 VM (TCG) whose e1000 NIC runs the iPXE ROM.
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -e /usr/lib/ipxe/qemu/efi-e1000.rom ] || need+=(ipxe-qemu)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing ${need[*]} and not root; install them and rerun" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Packages like dnsmasq, tftpd-hpa and snmpd must not start their daemons.
  created=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created=1; fi
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${need[@]}" >/dev/null
  [ $created = 1 ] && rm -f /usr/sbin/policy-rc.d
  for pf in /run/dnsmasq/dnsmasq.pid /run/tftpd-hpa.pid /run/snmpd.pid; do [ -s $pf ] && kill "$(cat $pf)" 2>/dev/null || true; done
fi
