#!/usr/bin/env bash
# make demo: the seed's claim provisioned end to end on this machine.
#   local control plane (etcd + kube-apiserver) + RDS emulator with a real PostgreSQL behind it
#   + paved run → namespace my-team, the seed Composition and claim → Ready → credentials shown
#   → psql logs in with the Secret's uri.
# make demo-down (e2e/demo.sh down) stops paved and the control plane.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PAVED_E2E_DIR="${PAVED_E2E_DIR:-$ROOT/target/e2e}"
STATE="$PAVED_E2E_DIR"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if [ "${1:-}" = "down" ]; then
  if [ -f "$STATE/paved.pid" ]; then
    kill "$(cat "$STATE/paved.pid")" 2>/dev/null || true
    rm -f "$STATE/paved.pid"
  fi
  e2e/env.sh down
  exit 0
fi

step "Installing prerequisites (Debian packages, kube-apiserver built once and cached, RDS emulator)"
e2e/install.sh

step "Building paved (the first build compiles the AWS SDK: a few minutes)"
cargo build --bin paved
PAVED="$ROOT/target/debug/paved"

step "Starting the local control plane, the RDS emulator and the PostgreSQL behind it"
e2e/env.sh up
# shellcheck disable=SC1091
source "$STATE/env"
K="$PAVED_KUBECTL"

# shellcheck source=e2e/lib/paved.sh
source "$ROOT/e2e/lib/paved.sh"

step "Installing the CRDs"
paved_install_crds "$PAVED" "$K"

step "Pointing paved at the RDS emulator (ProviderConfig 'default')"
paved_local_provider_config "$K"

step "Starting paved run (logs: $STATE/paved.log)"
if [ -f "$STATE/paved.pid" ] && kill -0 "$(cat "$STATE/paved.pid")" 2>/dev/null; then
  kill "$(cat "$STATE/paved.pid")" 2>/dev/null || true
  sleep 1
fi
paved_start "$PAVED" "$STATE/paved.log" "$STATE/paved.pid" 10s || exit 1

step "Applying the seed Composition (platform team) and claim (developer), exactly as written"
"$K" create namespace my-team --dry-run=client -o yaml | "$K" apply -f - >/dev/null
"$K" apply -f examples/seed/composition.yaml
"$K" apply -f examples/seed/claim.yaml

step "Waiting for the claim to become Ready"
if ! "$K" wait --for=condition=Ready postgresqlinstance/my-app-db -n my-team --timeout=180s; then
  "$K" describe postgresqlinstance my-app-db -n my-team
  tail -n 40 "$STATE/paved.log"
  exit 1
fi

step "kubectl get postgresqlinstance -A"
"$K" get postgresqlinstance -A
step "kubectl get instance -n my-team -o wide"
"$K" get instance -n my-team -o wide
step "The RDS instance as the AWS API reports it"
"$HOME/.cache/paved/venv/bin/python" e2e/lib/show_rds.py

step "The credentials Secret my-team/my-app-db-credentials (password masked)"
"$K" get secret my-app-db-credentials -n my-team -o json | python3 e2e/lib/show_secret.py

step "Logging in with the Secret: psql \"\$(kubectl get secret my-app-db-credentials -n my-team -o jsonpath='{.data.uri}' | base64 -d)\" -c 'select current_user, version()'"
PSQL=$(command -v psql || echo "$PAVED_PG_BIN/psql")
"$PSQL" "$("$K" get secret my-app-db-credentials -n my-team -o jsonpath='{.data.uri}' | base64 -d)" \
  -c 'select current_user, version()'

cat <<DONE

paved is running (pid $(cat "$STATE/paved.pid"), logs in $STATE/paved.log).
Use kubectl against the local control plane:
  source $STATE/env
  \$PAVED_KUBECTL get postgresqlinstance -A
  \$PAVED_KUBECTL describe postgresqlinstance my-app-db -n my-team
Metrics: curl http://127.0.0.1:$METRICS_PORT/metrics

The database is real (PostgreSQL $(basename "$(dirname "$PAVED_PG_BIN")") on 127.0.0.1, TLS). Point a local app at it:
  export DATABASE_URL="\$(\$PAVED_KUBECTL get secret my-app-db-credentials -n my-team -o jsonpath='{.data.uri}' | base64 -d)"
  (or the Secret's host, port, username, password keys; sslmode=require)
Tear it all down: make demo-down
DONE
