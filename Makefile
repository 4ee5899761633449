# reconciled — see README.md. The two commands that matter: make run, make test.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN := bin
FUZZTIME ?= 20s
API := /apis/reconciled.dev/v1alpha1

.PHONY: all build run test unit e2e fuzz-seeds fuzz torture bench deps-test vet clean install race crds

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/reconciled ./cmd/reconciled
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/reconcilectl ./cmd/reconcilectl

# Runs the daemon on a copy of examples/quickstart (so status write-back
# does not touch the checkout), with its state in the same temp dir. The API
# listens on LISTEN (default: the first free port from 127.0.0.1:9470), and
# the quickstart Link probes that port. The temp dir is removed when the
# daemon fails to start; Ctrl-C stops the daemon and its programs.
LISTEN ?=
run: build
	@set -u; tmp=$$(mktemp -d /tmp/reconciled-run.XXXXXX); \
	listen="$(LISTEN)"; \
	if [ -z "$$listen" ]; then \
	  for port in $$(seq 9470 9570); do (exec 3<>/dev/tcp/127.0.0.1/$$port) 2>/dev/null || { listen=127.0.0.1:$$port; break; }; done; \
	fi; \
	[ -n "$$listen" ] || { echo "make run: no free port in 127.0.0.1:9470-9570; set LISTEN=HOST:PORT" >&2; rm -rf "$$tmp"; exit 1; }; \
	cp -r examples/quickstart $$tmp/resources; \
	sed -i "s|127.0.0.1:9470|$$listen|g" $$tmp/resources/*.yaml; \
	echo "reconciled: resources $$tmp/resources (a copy of examples/quickstart: edit files there)"; \
	echo "  status page  http://$$listen/"; \
	echo "  metrics      http://$$listen/metrics"; \
	echo "  API          http://$$listen$(API) and unix socket $$tmp/state/reconciled.sock"; \
	echo "  CLI          export RECONCILED_SOCKET=$$tmp/state/reconciled.sock; $(BIN)/reconcilectl get all"; \
	echo "  (Ctrl-C stops the daemon and the quickstart programs)"; \
	trap '' INT TERM; \
	( trap - INT TERM; exec $(BIN)/reconciled --dir $$tmp/resources --state-dir $$tmp/state --listen $$listen --stop-on-exit ); rc=$$?; \
	if [ $$rc -ne 0 ]; then echo "make run: reconciled failed (exit $$rc); removed $$tmp" >&2; rm -rf "$$tmp"; exit $$rc; fi; \
	echo "make run: stopped; the resources and state are in $$tmp (rm -rf it when done)"

# The examples, run for real with what they need started locally
# (hack/demo): make demo-hecnet, demo-monitoring, demo-modules (root:
# systemd in namespaces), demo-piman (root: network namespaces).
DEMOS := hecnet monitoring modules piman
.PHONY: $(addprefix demo-,$(DEMOS))
$(addprefix demo-,$(DEMOS)): demo-%: build
	$(GO) build -o $(BIN)/demo ./hack/demo
	@exec $(BIN)/demo $*

# Every test: unit, fuzz seed corpora, end-to-end against real processes.
# Under CI (CI=true) every test whose real peer is missing fails instead of
# skipping (test/fixtures); the end of the output counts the tests run
# and the ones skipped, by reason.
test: deps-test vet
	@set -o pipefail; $(GO) test -json -count=1 ./... | $(GO) run ./hack/testreport
	@echo "make test: all tests passed"

# The CustomResourceDefinitions of deploy/crds, from the Go types (a test
# checks that they are current).
crds:
	$(GO) run ./cmd/reconcilectl crds --dir deploy/crds

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /test/e2e)

e2e:
	$(GO) test -count=1 -v ./test/e2e/

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }

# Installs what the tests need when it is missing.
deps-test:
	@hack/install-test-deps.sh
	@hack/kube/build.sh   # a real kube-apiserver and etcd for TestKubeAgents (about 12 min once, then cached outside the clone)

# Runs every fuzz target for FUZZTIME each (the seed corpora also run in make test).
fuzz:
	@hack/fuzz.sh $(FUZZTIME)

# The unit and package tests under the race detector (about a minute
# here); the end-to-end tests drive separate processes, so they are left
# out.
race:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test/e2e)

# Torture suite (issue 7): the end-to-end torture tests at full size
# (1,000 malformed files, ...), then every fuzz target for 60s each.
torture:
	@hack/kube/build.sh   # a real kube-apiserver for TestTortureCRDsInKubeAPIServer (about 12 min cold, cached)
	RECONCILED_TORTURE=1 $(GO) test -count=1 -timeout 60m -run 'Torture|TestStateDirFull|TestModuleSurvivesSystemdReexec' ./test/e2e/
	@hack/fuzz.sh 60s

# Benchmarks: Go micro-benchmarks, then the end-to-end harness.
bench: build
	@command -v supervisord >/dev/null && command -v runsv >/dev/null && command -v gcc >/dev/null || \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 supervisor runit gcc >/dev/null; }
	$(GO) test -run '^$$' -bench . -benchmem ./resources/... ./reconcile/... ./controllers/... ./internal/... ./netboot/...
	$(GO) run ./hack/bench

# Installs the two commands, the systemd units (deploy/, ExecStart pointed at
# $(PREFIX)/bin), the examples and an empty resource folder; reloads systemd
# when installing onto this machine (no DESTDIR) and systemctl is there.
# Then: systemctl enable --now reconciled.socket reconciled.service
PREFIX ?= /usr/local
UNITDIR ?= /etc/systemd/system
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/share/reconciled/examples
	install -m 0755 $(BIN)/reconciled $(BIN)/reconcilectl $(DESTDIR)$(PREFIX)/bin/
	sed 's|/usr/local/bin/reconciled|$(PREFIX)/bin/reconciled|' deploy/reconciled.service > $(DESTDIR)$(UNITDIR)/reconciled.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/reconciled.service
	install -m 0644 deploy/reconciled.socket $(DESTDIR)$(UNITDIR)/reconciled.socket
	cp -r examples/. $(DESTDIR)$(PREFIX)/share/reconciled/examples/
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/reconciled/README.md
	install -d -m 0755 $(DESTDIR)/etc/reconciled/resources
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

clean:
	rm -rf $(BIN)
