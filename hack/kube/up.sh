#!/bin/bash
# Adapted from ../shared/recipes/kube/up.sh for make torture (TestTortureCRDsInKubeAPIServer).
# Starts etcd + kube-apiserver on loopback (no controller-manager, no scheduler) and prints
# KUBE_SERVER, KUBE_TOKEN and the pids. Ready in about 5 s; RSS about 275 MB + 45 MB.
# Usage: BIN=DIR up.sh RUNDIR  (stop: kill the two pids it prints, then wait for them to exit)
# What works against it (tried with kubectl 1.32): CRDs with the status subresource and
# selectableFields (field selectors on a CRD field), label selectors, watch (also the watch-list
# form sendInitialEvents=true), Leases (coordination.k8s.io/v1), Events (v1 and events.k8s.io/v1).
# What does not exist without a controller-manager: garbage collection through ownerReferences,
# namespace deletion finishing, service-account tokens (use the static token below).
set -euo pipefail
B=${BIN:?set BIN to the folder build.sh filled}; R=${1:?run dir}
mkdir -p "$R/certs" "$R/etcd"
free() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
EP=$(free); PP=$(free); AP=$(free); TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
openssl genrsa -out "$R/sa.key" 2048 2>/dev/null; openssl rsa -in "$R/sa.key" -pubout -out "$R/sa.pub" 2>/dev/null
echo "$TOKEN,admin,admin-uid,\"system:masters\"" > "$R/tokens.csv"
"$B/etcd" --name e2e --data-dir "$R/etcd" --unsafe-no-fsync \
  --listen-client-urls http://127.0.0.1:$EP --advertise-client-urls http://127.0.0.1:$EP \
  --listen-peer-urls http://127.0.0.1:$PP --initial-advertise-peer-urls http://127.0.0.1:$PP \
  --initial-cluster e2e=http://127.0.0.1:$PP --log-level warn > "$R/etcd.log" 2>&1 &
EPID=$!
for _ in $(seq 100); do curl -s http://127.0.0.1:$EP/health | grep -q '"health":"true"' && break; sleep 0.1; done
"$B/kube-apiserver" --etcd-servers=http://127.0.0.1:$EP --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
  --secure-port=$AP --cert-dir="$R/certs" --token-auth-file="$R/tokens.csv" --authorization-mode=RBAC \
  --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$R/sa.pub" \
  --service-account-signing-key-file="$R/sa.key" --service-cluster-ip-range=10.96.0.0/24 \
  --endpoint-reconciler-type=none --enable-priority-and-fairness=false > "$R/apiserver.log" 2>&1 &
APID=$!
for _ in $(seq 300); do
  [ "$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" https://127.0.0.1:$AP/readyz)" = 200 ] && break; sleep 0.1
done
echo "KUBE_SERVER=https://127.0.0.1:$AP"; echo "KUBE_TOKEN=$TOKEN"; echo "ETCD_PID=$EPID"; echo "APISERVER_PID=$APID"
echo "# kubectl --server https://127.0.0.1:$AP --token $TOKEN --insecure-skip-tls-verify get --raw /readyz"
