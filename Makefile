# paved — the two commands that matter:
#   make demo   the seed's claim provisioned end to end on a local control plane + RDS emulator
#   make test   everything CI runs: installs, fmt, clippy, unit + integration tests
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

CARGO ?= cargo
# The test suite gets its own control plane, so it never disturbs a running demo.
TEST_ENV_DIR ?= $(CURDIR)/target/e2e-test

.PHONY: test install lint unit integration crds env-up env-down demo demo-down bench chaos corpus

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

## make bench: N claims (default 1000; `make bench N=200`) on a control plane of its own, paved
## built in release; writes target/bench/report.json and report.md and prints the table.
## Not part of `make test`: machines are noisy, so it reports and does not assert.
N ?= 1000
BENCH_ENV_DIR ?= $(CURDIR)/target/e2e-bench
bench: install
	export PAVED_E2E_DIR="$(BENCH_ENV_DIR)"
	trap 'e2e/env.sh down >/dev/null 2>&1 || true' EXIT
	e2e/env.sh up
	exes=$$($(CARGO) bench --bench scale --bench render --no-run --message-format=json \
	  | jq -r 'select(.reason=="compiler-artifact" and .executable!=null and .target.kind==["bench"]) | "\(.target.name)=\(.executable)"')
	render=$$(echo "$$exes" | sed -n 's/^render=//p' | tail -n 1)
	scale=$$(echo "$$exes" | sed -n 's/^scale=//p' | tail -n 1)
	echo "==> render micro-benchmark (criterion)"
	"$$render" --bench 2>&1 | grep -E 'time:|thrpt:|^[a-z].*/' || echo "render micro-benchmark failed: renders_per_second will be n/a"
	echo "==> scale benchmark, N=$(N)"
	N=$(N) "$$scale"

## make chaos: the full fault suite (50 claims and 20 SIGKILLs, 30% throttling + 5% HTTP 500,
## a 60 s AWS outage, an API server restart, ~58 bad inputs) on a control plane of its own, and
## a PAVED_FUZZ_SECS (default 600) proptest run over field paths and rendering, which lives
## next to the engine (src/compose/proptests.rs). The short versions run in make test.
CHAOS_ENV_DIR ?= $(CURDIR)/target/e2e-chaos
PAVED_FUZZ_SECS ?= 600
chaos: install
	export PAVED_E2E_DIR="$(CHAOS_ENV_DIR)"
	trap 'e2e/env.sh down >/dev/null 2>&1 || true' EXIT
	e2e/env.sh up
	exes=$$($(CARGO) test --lib --test integration --no-run --message-format=json \
	  | jq -r 'select(.reason=="compiler-artifact" and .executable!=null and .profile.test==true) | "\(.target.kind[0])=\(.executable)"')
	lib=$$(echo "$$exes" | sed -n 's/^lib=//p' | tail -n 1)
	integration=$$(echo "$$exes" | sed -n 's/^test=//p' | tail -n 1)
	mkdir -p target/chaos
	# the test binaries directly (not cargo test): no cargo lock held, no nextest timeout
	{
	  echo "==> proptest run over paved::compose, $(PAVED_FUZZ_SECS) s"
	  PAVED_FUZZ_SECS=$(PAVED_FUZZ_SECS) "$$lib" compose::proptests --test-threads=1 --nocapture
	  echo "==> fault scenarios"
	  PAVED_CHAOS_FULL=1 "$$integration" chaos:: --test-threads=1 --nocapture
	} 2>&1 | tee target/chaos/report.txt

## make corpus: every real-world Composition in CORPUS_DIR (default ../shared/corpus/compositions)
## rendered and run on a control plane of its own; report in target/corpus/report.md. Fails when an
## expectation in e2e/corpus-expected.txt stops holding. `.ci/run` runs it when the folder exists.
CORPUS_DIR ?= $(CURDIR)/../shared/corpus/compositions
corpus: install
	CORPUS_DIR="$(CORPUS_DIR)" e2e/corpus.sh
