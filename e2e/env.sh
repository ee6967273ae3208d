#!/usr/bin/env bash
# The local control plane for tests and the demo: etcd + a real kube-apiserver + the RDS emulator
# (moto), all on loopback with free ports.
#
#   e2e/env.sh up       start (idempotent: a running environment is reused), write target/e2e/env
#   e2e/env.sh down     stop exactly the processes `up` started (by pid) and remove their state
#   e2e/env.sh status   say what runs where
#   e2e/env.sh restart-apiserver   stop the kube-apiserver and start it again (same ports, same
#                       etcd, same flags): for tests of watch recovery
#
# `source target/e2e/env` afterwards exports KUBECONFIG, AWS_ENDPOINT_URL, AWS_REGION, dummy AWS
# credentials and PAVED_MOTO_URL. Set KUBEBUILDER_ASSETS to use your own kube-apiserver and etcd.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${PAVED_E2E_DIR:-$ROOT/target/e2e}"
CACHE="${PAVED_CACHE:-$HOME/.cache/paved}"
ENV_FILE="$STATE/env"

log() { printf '[env] %s\n' "$*" >&2; }

# N distinct free ports, chosen *below* the kernel's ephemeral range: a port from that range can
# be taken between choosing and binding by any outgoing connection (etcd's own gateway connects
# to itself), which is how a CI run once lost moto's port. Each is checked bindable.
free_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
try:
    low, high = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
except OSError:
    low, high = 32768, 60999
lo, hi = (10000, low - 1) if low > 12000 else (high + 1, 65535)
chosen = []
while len(chosen) < n:
    port = random.randint(lo, hi)
    if port in chosen:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    chosen.append(port)
print(" ".join(map(str, chosen)))
PY
}

alive() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

fail_with_log() {
  local name=$1
  log "$name failed to start; last lines of $STATE/$name.log:"
  tail -n 30 "$STATE/$name.log" >&2 || true
  return 1
}

wait_for() { # name, command, seconds; returns 1 (after printing the log tail) on failure
  local name=$1 cmd=$2 secs=$3 i
  for ((i = 0; i < secs * 4; i++)); do
    if eval "$cmd" >/dev/null 2>&1; then return 0; fi
    alive "$name" || { fail_with_log "$name"; return 1; }
    sleep 0.25
  done
  fail_with_log "$name"
}

bins() {
  if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]; then
    APISERVER="$KUBEBUILDER_ASSETS/kube-apiserver"
    ETCD="$KUBEBUILDER_ASSETS/etcd"
  else
    APISERVER="$CACHE/bin/kube-apiserver"
    ETCD=/usr/bin/etcd
  fi
  if [ -x "$CACHE/bin/kubectl" ]; then KUBECTL="$CACHE/bin/kubectl"; else KUBECTL=$(command -v kubectl || true); fi
  MOTO="$CACHE/venv/bin/moto_server"
  for b in "$APISERVER" "$ETCD" "$MOTO"; do
    [ -x "$b" ] || { log "missing $b: run e2e/install.sh first"; exit 1; }
  done
}

up() {
  bins
  mkdir -p "$STATE"
  if alive etcd && alive kube-apiserver && alive moto && [ -f "$ENV_FILE" ]; then
    log "already up (source $ENV_FILE)"
    return 0
  fi
  local attempt
  for attempt in 1 2 3; do
    down_quiet
    if start_all; then return 0; fi
    log "start attempt $attempt failed; stopping what started and trying again with new ports"
  done
  down_quiet
  log "could not start the local control plane after 3 attempts"
  exit 1
}

start_all() {
  mkdir -p "$STATE"
  local etcd_port etcd_peer api_port moto_port
  read -r etcd_port etcd_peer api_port moto_port < <(free_ports 4)

  # certificates: one self-signed serving cert, one service-account key pair
  # a CA, and a serving certificate signed by it (rustls/webpki refuse a CA cert as the leaf)
  openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=paved-e2e-ca" \
    -keyout "$STATE/ca.key" -out "$STATE/ca.crt" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$STATE/apiserver.key" -out "$STATE/apiserver.csr" >/dev/null 2>&1
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >"$STATE/apiserver.ext"
  openssl x509 -req -in "$STATE/apiserver.csr" -CA "$STATE/ca.crt" -CAkey "$STATE/ca.key" -CAcreateserial \
    -days 365 -extfile "$STATE/apiserver.ext" -out "$STATE/apiserver.crt" >/dev/null 2>&1
  openssl genrsa -out "$STATE/sa.key" 2048 >/dev/null 2>&1
  openssl rsa -in "$STATE/sa.key" -pubout -out "$STATE/sa.pub" >/dev/null 2>&1
  local admin_token paved_token
  admin_token=$(openssl rand -hex 24); paved_token=$(openssl rand -hex 24)
  # admin, plus a least-privilege identity for paved (bound to the chart's RBAC by tests)
  {
    echo "$admin_token,admin,admin,\"system:masters\""
    echo "$paved_token,system:serviceaccount:paved-system:paved,paved-sa,\"system:serviceaccounts,system:serviceaccounts:paved-system\""
  } >"$STATE/tokens.csv"

  log "starting etcd on 127.0.0.1:$etcd_port"
  "$ETCD" --data-dir "$STATE/etcd-data" --name paved-e2e \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "paved-e2e=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync \
    >"$STATE/etcd.log" 2>&1 &
  echo $! >"$STATE/etcd.pid"

  log "starting RDS emulator (moto) on 127.0.0.1:$moto_port"
  "$MOTO" -H 127.0.0.1 -p "$moto_port" >"$STATE/moto.log" 2>&1 &
  echo $! >"$STATE/moto.pid"

  wait_for etcd "curl -sf http://127.0.0.1:$etcd_port/health" 30 || return 1

  log "starting kube-apiserver on https://127.0.0.1:$api_port"
  "$APISERVER" --etcd-servers="http://127.0.0.1:$etcd_port" --secure-port="$api_port" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
    --tls-cert-file="$STATE/apiserver.crt" --tls-private-key-file="$STATE/apiserver.key" \
    --client-ca-file="$STATE/ca.crt" --token-auth-file="$STATE/tokens.csv" \
    --service-account-key-file="$STATE/sa.pub" --service-account-signing-key-file="$STATE/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc \
    --authorization-mode=RBAC --service-cluster-ip-range=10.0.0.0/24 --insecure-port=0 \
    --enable-priority-and-fairness=false --max-requests-inflight=1000 --max-mutating-requests-inflight=500 \
    >"$STATE/kube-apiserver.log" 2>&1 &
  echo $! >"$STATE/kube-apiserver.pid"

  write_kubeconfig "$STATE/kubeconfig" admin "$admin_token" "$api_port"
  write_kubeconfig "$STATE/kubeconfig-paved" paved "$paved_token" "$api_port"

  wait_for moto "curl -sf http://127.0.0.1:$moto_port/moto-api/" 60 || return 1
  wait_for kube-apiserver "curl -sfk -H 'Authorization: Bearer $admin_token' https://127.0.0.1:$api_port/readyz" 90 || return 1

  cat >"$ENV_FILE" <<ENV
# Written by e2e/env.sh up. Source it: . $ENV_FILE
export KUBECONFIG="$STATE/kubeconfig"
export PAVED_KUBECONFIG_LEAST_PRIVILEGE="$STATE/kubeconfig-paved"
export PAVED_KUBECTL="$KUBECTL"
export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port"
export PAVED_MOTO_URL="http://127.0.0.1:$moto_port"
export AWS_REGION="ap-northeast-2"
export AWS_DEFAULT_REGION="ap-northeast-2"
export AWS_ACCESS_KEY_ID="testing"
export AWS_SECRET_ACCESS_KEY="testing"
export PAVED_KUBE_APISERVER_PORT="$api_port"
ENV
  log "up: kube-apiserver https://127.0.0.1:$api_port, RDS emulator http://127.0.0.1:$moto_port"
  log "use it: source $ENV_FILE && \$PAVED_KUBECTL get ns"
}

write_kubeconfig() { # file user token port
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: paved-e2e
  cluster:
    server: https://127.0.0.1:$4
    certificate-authority: $STATE/ca.crt
users:
- name: $2
  user:
    token: $3
contexts:
- name: $2@paved-e2e
  context:
    cluster: paved-e2e
    user: $2
    namespace: default
current-context: $2@paved-e2e
KC
}

stop_one() {
  local name=$1 pid i
  [ -f "$STATE/$name.pid" ] || return 0
  pid=$(cat "$STATE/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$STATE/$name.pid"
}

down_quiet() {
  for n in kube-apiserver moto etcd; do stop_one "$n"; done
  rm -rf "$STATE/etcd-data" "$ENV_FILE"
}

down() {
  down_quiet
  rm -rf "$STATE"
  log "down"
}

status() {
  local rc=0
  for n in etcd kube-apiserver moto; do
    if alive "$n"; then echo "$n: running (pid $(cat "$STATE/$n.pid"))"; else echo "$n: stopped"; rc=1; fi
  done
  [ -f "$ENV_FILE" ] && grep -E 'KUBECONFIG=|AWS_ENDPOINT_URL=' "$ENV_FILE" | sed 's/^export /  /'
  return $rc
}

restart_apiserver() {
  alive kube-apiserver || { log "kube-apiserver is not running in $STATE"; exit 1; }
  local pid args=() port token
  pid=$(cat "$STATE/kube-apiserver.pid")
  # the exact command line it was started with
  mapfile -d '' args <"/proc/$pid/cmdline"
  port=$(sed -n 's/^export PAVED_KUBE_APISERVER_PORT="\(.*\)"$/\1/p' "$ENV_FILE")
  token=$(head -n 1 "$STATE/tokens.csv" | cut -d, -f1)
  log "restarting kube-apiserver (pid $pid) on https://127.0.0.1:$port"
  stop_one kube-apiserver
  "${args[@]}" >>"$STATE/kube-apiserver.log" 2>&1 &
  echo $! >"$STATE/kube-apiserver.pid"
  wait_for kube-apiserver "curl -sfk -H 'Authorization: Bearer $token' https://127.0.0.1:$port/readyz" 90 || exit 1
  log "kube-apiserver restarted (pid $(cat "$STATE/kube-apiserver.pid"))"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  restart-apiserver) restart_apiserver ;;
  *) echo "usage: $0 up|down|status|restart-apiserver" >&2; exit 2 ;;
esac
