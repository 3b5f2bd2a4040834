# Ferry — developer entry points. Everything a fresh machine needs is built here:
# the Go-built control plane and tools (.cache/bin), the emulator's venv (.cache/venv)
# and the Rust crate (target/). All three are git-ignored caches, reused when present.

SHELL := /bin/bash
CARGO ?= cargo
# Integration tests mostly wait on the API server and the emulator; four at a time fit 2 cores.
TEST_THREADS ?= 4
export GOTOOLCHAIN := local

PREFIX ?= $(HOME)/.local

.PHONY: all build install testenv test unit lint fmt crds demo bench clean-testenv \
	image pause-image node-packages e2e-prereqs e2e chart install.yaml manifests

all: build

build:
	$(CARGO) build --locked

## install: ferry and the kubectl plugin link (kubectl ferry ...) into $(PREFIX)/bin
install:
	$(CARGO) build --release --locked
	install -D -m 0755 target/release/ferry $(PREFIX)/bin/ferry
	ln -sf ferry $(PREFIX)/bin/kubectl-ferry
	@echo "installed $(PREFIX)/bin/ferry and $(PREFIX)/bin/kubectl-ferry (kubectl ferry ...)"

## testenv: build etcd, kube-apiserver, kubectl, helm and the GitOps checkers, and the emulator venv
testenv:
	@bash tests/tools/build.sh
	@bash tests/emulator/setup.sh >/dev/null && echo "emulator venv: .cache/venv"

## test: every test — unit, emulator, integration on a real API server and the AWS emulator,
## and the e2e tests (tests/e2e.rs: the image and the chart on a real node)
test: testenv e2e-prereqs
	$(CARGO) test --locked --no-run
	.cache/venv/bin/python -m pytest -q tests/emulator
	$(CARGO) test --locked -- --test-threads=$(TEST_THREADS)

## image: the operator's OCI image, built offline with podman (static binary + CA bundle,
## user 65532, FROM scratch), tagged with the crate version; saved in .cache/images/
image:
	@bash hack/image.sh

## pause-image: the test node's sandbox image (ferry.test/pause:1)
pause-image:
	@bash hack/image.sh pause

## node-packages: Debian's containerd, runc and CNI plugins for the test node (installed once)
node-packages:
	@bash hack/host-packages.sh containerd runc containernetworking-plugins

e2e-prereqs: node-packages pause-image image

## e2e: only the e2e tests (tests/e2e.rs): the image, with the chart, on a real node
e2e: testenv e2e-prereqs
	$(CARGO) test --locked --test e2e -- --test-threads=$(TEST_THREADS)

## chart: the chart archive (helm package) in .cache/charts/
chart:
	@bash tests/tools/build.sh helm >/dev/null
	@mkdir -p .cache/charts
	HELM_CACHE_HOME=$(CURDIR)/.cache/helm/cache HELM_CONFIG_HOME=$(CURDIR)/.cache/helm/config \
	HELM_DATA_HOME=$(CURDIR)/.cache/helm/data .cache/bin/helm package charts/ferry --destination .cache/charts

## install.yaml (or manifests): regenerate the committed plain manifest deploy/install.yaml
install.yaml manifests:
	@bash hack/manifests.sh

## unit: the pure tests only (no control plane)
unit:
	$(CARGO) test --locked --lib

## lint: formatting, clippy and the API docs (intra-doc links included), as CI checks them
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --locked --no-deps --lib

fmt:
	$(CARGO) fmt

## crds: regenerate the committed CRD, the Helm chart's copy and deploy/install.yaml from the Rust types
crds:
	$(CARGO) run --quiet --locked -- crd > crds/ferry.dev_crossaccounttransfers.yaml
	cp crds/ferry.dev_crossaccounttransfers.yaml charts/ferry/crds/ferry.dev_crossaccounttransfers.yaml
	@bash hack/manifests.sh

## demo: the whole transfer, end to end, on a local control plane and the AWS emulator
demo: testenv
	$(CARGO) build --locked
	@bash hack/demo.sh

## bench: benchmarks, reported in BENCHMARKS.md
bench: testenv
	@bash hack/bench.sh

clean-testenv:
	rm -rf .cache target/ferry-testenv
