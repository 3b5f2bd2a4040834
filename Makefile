# Ferry — developer entry points. Everything a fresh machine needs is built here:
# the Go-built control plane and tools (.cache/bin), the emulator's venv (.cache/venv)
# and the Rust crate (target/). All three are git-ignored caches, reused when present.

SHELL := /bin/bash
CARGO ?= cargo
# Integration tests mostly wait on the API server and the emulator; four at a time fit 2 cores.
TEST_THREADS ?= 4
export GOTOOLCHAIN := local

PREFIX ?= $(HOME)/.local

.PHONY: all build install testenv tools tools-kube tools-other demo-tools venv host-packages test test-build unit lint fmt crds \
	demo bench stress clean-testenv image test-image pause-image node-packages e2e-prereqs e2e chart \
	install.yaml manifests

# The Go-built tools each entry point needs (tests/tools/build.sh): the demo only the control
# plane; the tests also helm, the GitOps checkers and the e2e node's kubelet, scheduler,
# controller manager and sandbox process.
DEMO_TOOLS := etcd kube-apiserver kubectl
# Two go builds side by side (and beside cargo): etcd and the Kubernetes binaries, which share
# most of their packages, in one go build (tests/tools/build.sh builds one module's tools
# together); helm, the GitOps checkers and the sandbox process in the other.
KUBE_TOOLS := etcd kube-apiserver kubectl kubelet kube-scheduler kube-controller-manager
OTHER_TOOLS := helm ferry-luahealth ferry-kstatus ferry-pause
# The Debian packages the images and the e2e node need (hack/host-packages.sh), installed in one
# apt-get run: two at once would fight over dpkg's lock.
HOST_PACKAGES := podman runc containerd containernetworking-plugins

all: build

build:
	$(CARGO) build --locked

## install: ferry and the kubectl plugin link (kubectl ferry ...) into $(PREFIX)/bin
install:
	$(CARGO) build --release --locked
	install -D -m 0755 target/release/ferry $(PREFIX)/bin/ferry
	ln -sf ferry $(PREFIX)/bin/kubectl-ferry
	@echo "installed $(PREFIX)/bin/ferry and $(PREFIX)/bin/kubectl-ferry (kubectl ferry ...)"

## testenv: build etcd, kube-apiserver, kubectl, helm, the GitOps checkers and the e2e node's
## tools, and the emulator venv
testenv: tools venv

tools:
	@$(MAKE) --no-print-directory -j2 tools-kube tools-other

tools-kube:
	@bash tests/tools/build.sh $(KUBE_TOOLS)

tools-other:
	@bash tests/tools/build.sh $(OTHER_TOOLS)

demo-tools:
	@bash tests/tools/build.sh $(DEMO_TOOLS)

venv:
	@bash tests/emulator/setup.sh >/dev/null && echo "emulator venv: .cache/venv"

host-packages:
	@bash hack/host-packages.sh $(HOST_PACKAGES)

## test: every test — unit, emulator, integration on a real API server and the AWS emulator,
## and the e2e tests (tests/e2e.rs: the image and the chart on a real node). The Go tools, the
## venv and the Debian packages are made while cargo builds (cargo's long single-crate phases
## leave a core free); the two cargo builds (tests, then the e2e image) run one after the other.
test:
	@$(MAKE) --no-print-directory -j4 tools venv host-packages test-build
	.cache/venv/bin/python -m pytest -q tests/emulator
	$(CARGO) test --locked -- --test-threads=$(TEST_THREADS)

# The test binaries, then the e2e image (the debug build linked statically) and the sandbox image
# (their packages come from the host-packages job; hack/host-packages.sh takes turns).
test-build:
	$(CARGO) test --locked --no-run
	@PROFILE=dev bash hack/image.sh
	@bash hack/image.sh pause

## stress: the integration binary STRESS_RUNS times in a row (default 10) at
## --test-threads=STRESS_THREADS (default 8) while a CPU hog keeps both cores busy; stops at the
## first red run and prints each run's result (hack/stress.sh)
stress: testenv
	$(CARGO) test --locked --test integration --no-run
	@bash hack/stress.sh

## image: the operator's OCI image, built offline with podman (static release binary + CA
## bundle, user 65532, FROM scratch), tagged with the crate version; saved in .cache/images/
image:
	@bash hack/image.sh

## test-image: the same image with the unoptimized debug build linked statically, as the e2e
## tests run it
test-image:
	@PROFILE=dev bash hack/image.sh

## pause-image: the test node's sandbox image (ferry.test/pause:1)
pause-image:
	@bash hack/image.sh pause

## node-packages: Debian's podman, runc, containerd and CNI plugins for the images and the test
## node (installed once)
node-packages: host-packages

e2e-prereqs: host-packages test-image pause-image

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
	$(CARGO) run --quiet --locked -- crd crossaccounttransfers > crds/ferry.dev_crossaccounttransfers.yaml
	$(CARGO) run --quiet --locked -- crd transferpolicies > crds/ferry.dev_transferpolicies.yaml
	cp crds/ferry.dev_crossaccounttransfers.yaml crds/ferry.dev_transferpolicies.yaml charts/ferry/crds/
	@bash hack/manifests.sh

## demo: the whole transfer, end to end, on a local control plane and the AWS emulator; builds
## only what it needs (the control plane's three tools and the venv while cargo builds ferry)
demo:
	@$(MAKE) --no-print-directory -j3 demo-tools venv build
	@bash hack/demo.sh

## bench: benchmarks, reported in BENCHMARKS.md
bench: testenv
	@bash hack/bench.sh

clean-testenv:
	rm -rf .cache target/ferry-testenv
