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

"$PAVED" crds | "$K" apply -f - >/dev/null
"$K" wait --for=condition=Established crd --all --timeout=60s >/dev/null
"$K" apply -f - >/dev/null <<YAML
apiVersion: aws.upbound.io/v1beta1
kind: ProviderConfig
metadata:
  name: default
spec:
  credentials:
    source: InjectedIdentity
  endpoint:
    url:
      type: Static
      static: $AWS_ENDPOINT_URL
YAML

ports=$(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')
read -r HEALTH_PORT METRICS_PORT <<<"$ports"
PAVED_POLL_INTERVAL=5s "$PAVED" run --health-addr "127.0.0.1:$HEALTH_PORT" \
  --metrics-addr "127.0.0.1:$METRICS_PORT" >"$OUT/paved.log" 2>&1 &
echo $! >"$OUT/paved.pid"
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$HEALTH_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$(cat "$OUT/paved.pid")" 2>/dev/null || { tail -n 30 "$OUT/paved.log"; exit 1; }
  sleep 0.5
done

"${PAVED_CACHE:-$HOME/.cache/paved}/venv/bin/python" e2e/lib/corpus.py "$CORPUS_DIR" "$K" "$PAVED" "$OUT" \
  "$ROOT/e2e/corpus-expected.txt"
