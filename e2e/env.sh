#!/usr/bin/env bash
# The local control plane for tests and the demo: etcd + a real kube-apiserver + the RDS emulator
# (moto) with a real PostgreSQL server behind its instances, all on loopback with free ports.
#
# The RDS API is moto behind a shim (e2e/lib/rds_backend.py): every request goes to moto, and what
# moto accepts is done for real on a private PostgreSQL cluster (initdb in the env dir, run by the
# unprivileged user paved-sandbox when root, TLS with a certificate of the env's CA): an instance
# gets a role, its databases and an endpoint 127.0.0.1:<port of its own>.
#
#   e2e/env.sh up       start (idempotent: a running environment is reused), write target/e2e/env
#   e2e/env.sh down     stop exactly the processes `up` started (by pid) and remove their state
#   e2e/env.sh status   say what runs where
#   e2e/env.sh restart-apiserver   stop the kube-apiserver and start it again (same ports, same
#                       etcd, same flags): for tests of watch recovery
#
# `source target/e2e/env` afterwards exports KUBECONFIG, AWS_ENDPOINT_URL (the shim), AWS_REGION,
# dummy AWS credentials, PAVED_MOTO_URL (the same shim: the RDS API tests use),
# PAVED_MOTO_DIRECT_URL (moto alone: no databases), PAVED_POSTGRES_* (the server itself) and
# PAVED_RDS_SNAPSHOTS (where snapshots' pg_dump files go). Set KUBEBUILDER_ASSETS to use your own
# kube-apiserver and etcd.
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
  PYTHON="$CACHE/venv/bin/python"
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  for b in "$APISERVER" "$ETCD" "$MOTO" "$PYTHON" "$PG_BIN/postgres" "$PG_BIN/initdb"; do
    [ -x "$b" ] || { log "missing $b: run e2e/install.sh first"; exit 1; }
  done
}

up() {
  bins
  mkdir -p "$STATE"
  if alive etcd && alive kube-apiserver && alive moto && alive postgres && alive rds-backend && [ -f "$ENV_FILE" ]; then
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
  local etcd_port etcd_peer api_port moto_port shim_port pg_port
  read -r etcd_port etcd_peer api_port moto_port shim_port pg_port < <(free_ports 6)

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

  start_postgres "$pg_port" || return 1

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
  wait_for postgres "'$PG_BIN/pg_isready' -q -h '$PGDIR' -p $pg_port" 30 || return 1
  log "PostgreSQL ready on 127.0.0.1:$pg_port (TLS), $(( $(date +%s%N) / 1000000 - PG_T0 )) ms after initdb began (alongside etcd and moto)"
  log "starting the RDS shim (moto + PostgreSQL) on 127.0.0.1:$shim_port"
  "$PYTHON" "$ROOT/e2e/lib/rds_backend.py" --port "$shim_port" --moto-url "http://127.0.0.1:$moto_port" \
    --pg-bin "$PG_BIN" --pg-socket "$PGDIR" --pg-port "$pg_port" --pg-user "$PG_SUPERUSER" \
    --cert "$STATE/postgres-tls.crt" --key "$STATE/postgres-tls.key" \
    --state-dir "$STATE/rds-backend" --snapshots "$STATE/rds-snapshots" >"$STATE/rds-backend.log" 2>&1 &
  echo $! >"$STATE/rds-backend.pid"
  wait_for rds-backend "curl -sf http://127.0.0.1:$shim_port/moto-api/" 30 || return 1
  wait_for kube-apiserver "curl -sfk -H 'Authorization: Bearer $admin_token' https://127.0.0.1:$api_port/readyz" 90 || return 1

  cat >"$ENV_FILE" <<ENV
# Written by e2e/env.sh up. Source it: . $ENV_FILE
export KUBECONFIG="$STATE/kubeconfig"
export PAVED_KUBECONFIG_LEAST_PRIVILEGE="$STATE/kubeconfig-paved"
export PAVED_KUBECTL="$KUBECTL"
export AWS_ENDPOINT_URL="http://127.0.0.1:$shim_port"
export PAVED_MOTO_URL="http://127.0.0.1:$shim_port"
export PAVED_MOTO_DIRECT_URL="http://127.0.0.1:$moto_port"
export PAVED_POSTGRES_HOST="127.0.0.1"
export PAVED_POSTGRES_PORT="$pg_port"
export PAVED_POSTGRES_SOCKET_DIR="$PGDIR"
export PAVED_POSTGRES_SUPERUSER="$PG_SUPERUSER"
export PAVED_POSTGRES_CA="$STATE/ca.crt"
export PAVED_PG_BIN="$PG_BIN"
export PAVED_RDS_SNAPSHOTS="$STATE/rds-snapshots"
export AWS_REGION="ap-northeast-2"
export AWS_DEFAULT_REGION="ap-northeast-2"
export AWS_ACCESS_KEY_ID="testing"
export AWS_SECRET_ACCESS_KEY="testing"
export PAVED_KUBE_APISERVER_PORT="$api_port"
ENV
  log "up: kube-apiserver https://127.0.0.1:$api_port, RDS API http://127.0.0.1:$shim_port (moto :$moto_port, PostgreSQL :$pg_port)"
  log "use it: source $ENV_FILE && \$PAVED_KUBECTL get ns"
}

# The private PostgreSQL cluster behind the emulator's instances. PostgreSQL refuses to run as
# root, so as root it runs as the unprivileged user $PG_OS_USER (created once by install.sh or
# here). Its data directory is $STATE/postgres unless that user cannot reach it (an env dir
# under a private home), then a directory in /tmp that `down` removes. Durability is off
# (fsync, full-page writes): this is a sandbox.
PG_OS_USER=paved-sandbox
PG_SUPERUSER=sandbox_admin
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    setpriv --reuid="$PG_OS_USER" --regid="$PG_OS_USER" --init-groups -- "$@"
  else
    "$@"
  fi
}

start_postgres() { # port
  local port=$1
  PG_T0=$(( $(date +%s%N) / 1000000 ))
  if [ "$(id -u)" = 0 ] && ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_OS_USER"
  fi
  PGDIR="$STATE/postgres"
  mkdir -p "$PGDIR"
  [ "$(id -u)" = 0 ] && chown "$PG_OS_USER:" "$PGDIR"
  if ! as_pg test -w "$PGDIR" 2>/dev/null; then
    rmdir "$PGDIR"
    PGDIR=$(mktemp -d /tmp/paved-postgres.XXXXXX)
    chown "$PG_OS_USER:" "$PGDIR"
    echo "$PGDIR" >"$STATE/postgres.dir"
  fi
  chmod 700 "$PGDIR"
  # the server certificate, signed by the env's CA (so verify-full with sslrootcert=ca.crt works too)
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$STATE/postgres-tls.key" -out "$STATE/postgres-tls.csr" >/dev/null 2>&1
  openssl x509 -req -in "$STATE/postgres-tls.csr" -CA "$STATE/ca.crt" -CAkey "$STATE/ca.key" -CAcreateserial \
    -days 365 -extfile "$STATE/apiserver.ext" -out "$STATE/postgres-tls.crt" >/dev/null 2>&1
  install -m 600 "$STATE/postgres-tls.crt" "$PGDIR/server.crt"
  install -m 600 "$STATE/postgres-tls.key" "$PGDIR/server.key"
  [ "$(id -u)" = 0 ] && chown "$PG_OS_USER:" "$PGDIR/server.crt" "$PGDIR/server.key"
  log "initdb (PostgreSQL $(basename "$(dirname "$PG_BIN")")) in $PGDIR"
  (cd "$PGDIR" && as_pg "$PG_BIN/initdb" -D "$PGDIR/data" -U "$PG_SUPERUSER" -N -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256) >"$STATE/postgres.log" 2>&1 || { fail_with_log postgres; return 1; }
  # the superuser only on the socket (which only root and $PG_OS_USER can reach); everyone else
  # with a password, over TLS on TCP
  cat >"$PGDIR/data/pg_hba.conf" <<HBA
local   all   $PG_SUPERUSER                trust
local   all   all                          scram-sha-256
hostssl all   all           127.0.0.1/32   scram-sha-256
HBA
  log "starting PostgreSQL on 127.0.0.1:$port (TLS)"
  local runas=()
  [ "$(id -u)" = 0 ] && runas=(setpriv --reuid="$PG_OS_USER" --regid="$PG_OS_USER" --init-groups --)
  # exec all the way down: the pid recorded is the postmaster's
  (cd "$PGDIR" && exec "${runas[@]}" "$PG_BIN/postgres" -D "$PGDIR/data" -c listen_addresses=127.0.0.1 -c port="$port" \
    -c unix_socket_directories="$PGDIR" -c unix_socket_permissions=0700 \
    -c ssl=on -c ssl_cert_file="$PGDIR/server.crt" -c ssl_key_file="$PGDIR/server.key" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
    -c password_encryption=scram-sha-256) >>"$STATE/postgres.log" 2>&1 &
  echo $! >"$STATE/postgres.pid"
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
    # PostgreSQL: SIGINT is its fast shutdown (SIGTERM would wait for every client to leave)
    if [ "$name" = postgres ]; then kill -INT "$pid" 2>/dev/null || true; else kill "$pid" 2>/dev/null || true; fi
    for ((i = 0; i < 40; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$STATE/$name.pid"
}

down_quiet() {
  # all at once: each takes a moment to be reaped, and none needs another to stop first
  local n stoppers=()
  for n in kube-apiserver rds-backend moto postgres etcd; do stop_one "$n" & stoppers+=($!); done
  wait "${stoppers[@]}"
  if [ -f "$STATE/postgres.dir" ]; then rm -rf "$(cat "$STATE/postgres.dir")"; rm -f "$STATE/postgres.dir"; fi
  rm -rf "$STATE/etcd-data" "$STATE/postgres" "$STATE/rds-backend" "$STATE/rds-snapshots" "$ENV_FILE"
}

down() {
  down_quiet
  rm -rf "$STATE"
  log "down"
}

status() {
  local rc=0
  for n in etcd kube-apiserver moto postgres rds-backend; do
    if alive "$n"; then echo "$n: running (pid $(cat "$STATE/$n.pid"))"; else echo "$n: stopped"; rc=1; fi
  done
  [ -f "$ENV_FILE" ] && grep -E 'KUBECONFIG=|AWS_ENDPOINT_URL=|PAVED_POSTGRES_PORT=' "$ENV_FILE" | sed 's/^export /  /'
  if [ -f "$STATE/rds-backend/instances.json" ]; then
    python3 - "$STATE/rds-backend/instances.json" <<'PY'
import json, sys
instances = json.load(open(sys.argv[1]))
print(f"RDS instances backed by PostgreSQL: {len(instances)}")
for key, rec in sorted(instances.items()):
    print(f"  {key}: 127.0.0.1:{rec['port']} user {rec['username']} (role {rec['role']})")
PY
  fi
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
