# hypervisor.network: `make demo` and `make test` work on a fresh Debian 12 machine as root.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/build/collections
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_NOCOLOR := 1
export NO_COLOR := 1
export PYTHONDONTWRITEBYTECODE := 1
COLLECTION_SRC := $(CURDIR)/build/sanity/ansible_collections/hypervisor/network

.PHONY: help deps demo test molecule unit integration sanity lint docs-check build-check bench clean
.PHONY: version-matrix changelog test-hosts hosts-core

help:
	@echo "make demo   build the sandbox lab, run the playbook against it, print what was proven"
	@echo "make test   every test layer: unit, integration, sanity, lint, docs, build"
	@echo "make bench  benchmarks against the common alternatives"
	@echo "make test-hosts  every test on Debian VMs over SSH (tests/hostlab: VLANs, reboots)"

deps:
	@scripts/install-deps.sh

demo: deps
	$(PY) scripts/demo.py $(if $(HOSTS),--hosts $(HOSTS))

test: deps
	$(MAKE) --no-print-directory unit integration hosts-core sanity lint docs-check build-check version-matrix molecule

# Guest connectivity on the sandbox lab (root): create, converge, idempotence, verify, destroy.
molecule:
	molecule test -s bridge_host
	molecule test -s kvm_host

unit:
	$(PY) -m pytest -q tests/unit

integration:
	$(PY) -m pytest -q tests/integration -m "not hostlab"

# Debian VMs (QEMU TCG) reached over SSH; the image is built once and cached under build/hostlab.
# hosts-core is the part that fits make test's time budget; test-hosts runs them all, and the
# Molecule scenario on a VM (kvm_host over SSH: create boots, destroy stops it by PID).
hosts-core:
	$(PY) -m pytest -q -m hostlab_core tests/integration tests/hostlab

test-hosts: deps
	$(PY) -m pytest -q -m hostlab tests/integration tests/hostlab
	molecule test -s kvm_host_vm

sanity:
	@scripts/sanity.sh

# the whole project (roles, playbooks, molecule scenarios, galaxy.yml, meta): see .ansible-lint
# with ansible.windows (the declared dependency, unpacked by make deps) on the path, as docs-check has it
lint:
	ANSIBLE_COLLECTIONS_PATH=$(ANSIBLE_COLLECTIONS_PATH):$(CURDIR)/build/extra_collections ansible-lint --nocolor --profile production --offline

docs-check:
	@scripts/docs-check.sh

build-check:
	@scripts/build-check.sh

# sanity, unit and an integration slice on every other ansible-core of the range we claim
# (meta/runtime.yml), one venv per version under build/ (scripts/version-matrix.sh)
version-matrix:
	@scripts/version-matrix.sh

# regenerate CHANGELOG.rst from the fragments, as the release of galaxy.yml's version would
changelog:
	@CHANGELOG_WRITE=1 scripts/changelog-check.sh

bench: deps
	$(PY) bench/netfilter_bench.py

clean:
	rm -rf build .pytest_cache .hypothesis tests/output
