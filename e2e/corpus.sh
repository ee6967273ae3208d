#!/usr/bin/env bash
# make corpus: every entry of the real-world Composition corpus (CORPUS_DIR, default
# ../shared/corpus/compositions beside the project) on a local control plane of its own:
# rendered offline, then applied with its XRD and example claim and waited on until Ready.
# Writes target/corpus/report.md. Fails only when an expectation in e2e/corpus-expected.txt
# (what paved achieved when it was last raised) no longer holds. Without the folder it says so
# and succeeds: a user's clone has no corpus.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CORPUS_DIR="${CORPUS_DIR:-$ROOT/../shared/corpus/compositions}"
if [ ! -d "$CORPUS_DIR" ]; then
  echo "corpus: no folder at $CORPUS_DIR (set CORPUS_DIR); nothing to run"
  exit 0
fi
CORPUS_DIR="$(cd "$CORPUS_DIR" && pwd)"
export PAVED_E2E_DIR="${PAVED_E2E_DIR:-$ROOT/target/e2e-corpus}"
OUT="$ROOT/target/corpus"
rm -rf "$OUT"
mkdir -p "$OUT"

cargo build -q --bin paved
PAVED="$ROOT/target/debug/paved"

cleanup() {
  if [ -f "$OUT/paved.pid" ]; then kill "$(cat "$OUT/paved.pid")" 2>/dev/null || true; fi
  e2e/env.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT
e2e/env.sh up
# shellcheck disable=SC1091
source "$PAVED_E2E_DIR/env"
K="$PAVED_KUBECTL"

# shellcheck source=e2e/lib/paved.sh
source "$ROOT/e2e/lib/paved.sh"
paved_install_crds "$PAVED" "$K"
paved_local_provider_config "$K" >/dev/null
paved_start "$PAVED" "$OUT/paved.log" "$OUT/paved.pid" 5s || exit 1

"${PAVED_CACHE:-$HOME/.cache/paved}/venv/bin/python" e2e/lib/corpus.py "$CORPUS_DIR" "$K" "$PAVED" "$OUT" \
  "$ROOT/e2e/corpus-expected.txt"
