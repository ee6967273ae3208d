# paved — the two commands that matter:
#   make demo   the seed's claim provisioned end to end on a local control plane + RDS emulator
#   make test   everything CI runs: installs, fmt, clippy, unit + integration tests
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

CARGO ?= cargo
# The test suite gets its own control plane, so it never disturbs a running demo.
TEST_ENV_DIR ?= $(CURDIR)/target/e2e-test

.PHONY: test install lint unit integration crds env-up env-down demo demo-down bench chaos

## Everything CI runs. Brings the local control plane up and always down again.
test: install lint
	export PAVED_E2E_DIR="$(TEST_ENV_DIR)"
	trap 'e2e/env.sh down >/dev/null 2>&1 || true' EXIT
	e2e/env.sh up
	if $(CARGO) nextest --version >/dev/null 2>&1; then
	  $(CARGO) nextest run --workspace --lib --bins --tests --no-fail-fast
	else
	  $(CARGO) test --workspace --lib --bins --tests --no-fail-fast
	fi

## Debian packages, kube-apiserver + kubectl (built once, cached), the Python venv, rustfmt/clippy.
install:
	e2e/install.sh
	$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) nextest run --lib --bins

## Regenerate crds/ from the Rust types, and the chart's and kustomize base's copies.
crds:
	$(CARGO) run -q -- crds --out-dir crds
	$(CARGO) run -q -- crds --out-dir charts/paved/crds
	$(CARGO) run -q -- crds --out-dir deploy/base/crds

env-up: install
	e2e/env.sh up

env-down:
	e2e/env.sh down

## The main job on the local default: seed claim → RDS (emulator) → credentials Secret.
demo:
	e2e/demo.sh

demo-down:
	e2e/demo.sh down
