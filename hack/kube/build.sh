#!/bin/bash
# Adapted from ../shared/recipes/kube/build.sh for make test (TestKubeAgents) and make torture
# (TestTortureCRDsInKubeAPIServer).
# Builds a real kube-apiserver (v1.37.2) and etcd (v3.6.16) from Go modules into $OUT.
# Tried on this kind of machine: cold build about 12 min on 2 idle cores (21 min niced under load),
# 2.9 GB of build cache; a warm rebuild of both takes about 20 s. Debian's etcd 3.4.23 is too old
# for the watch-list requests that current client-go informers send, hence etcd from modules.
# Usage: OUT=DIR [WORK=DIR] build.sh   (defaults: WORK=${XDG_CACHE_HOME:-$HOME/.cache}/kube-e2e, OUT=$WORK/bin)
set -euo pipefail
K=v1.37.2; S=v0.37.2; ETCD=v3.6.16
W=${WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-e2e}; OUT=${OUT:-$W/bin}
export PATH=/usr/local/go/bin:$PATH GOFLAGS=-buildvcs=false
mkdir -p "$W/mod" "$W/etcdmod" "$OUT"
if [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/etcd" ]; then echo "already built in $OUT"; exit 0; fi
# kube-apiserver: require k8s.io/kubernetes and replace each staging module (./staging/... in its
# go.mod) with the published v0.37.x release of the same name.
cd "$W/mod"
MOD=$(go mod download -json k8s.io/kubernetes@$K | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
{ printf 'module kubee2e\n\ngo 1.26.0\n\ngodebug default=go1.26\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' $K
  grep -oE '^\s*k8s.io/[a-z0-9-]+ => ./staging' "$MOD" | awk -v s=$S '{print "\t"$1" => "$1" "s}'; echo ')'; } > go.mod
printf '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' > tools.go
go mod tidy
V=k8s.io/component-base/version
go build -trimpath -ldflags="-s -w -X $V.gitVersion=$K -X $V.gitMajor=1 -X $V.gitMinor=37 -X $V.gitTreeState=clean" \
  -o "$OUT/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
# etcd: upstream etcdmain behind a three-line main
cd "$W/etcdmod"
printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > main.go
[ -f go.mod ] || go mod init kubee2e/etcd
go get go.etcd.io/etcd/server/v3@$ETCD && go mod tidy
go build -trimpath -ldflags='-s -w' -o "$OUT/etcd" .
"$OUT/kube-apiserver" --version; "$OUT/etcd" --version | sed -n 1p
