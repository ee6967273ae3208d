#!/usr/bin/env bash
# Installs everything the local control plane and the test suite need, idempotently:
#   - Debian packages: etcd, PostgreSQL (the sandbox's databases behind the RDS emulator), Go (to
#     build kube-apiserver/kubectl), jq, lua5.1, openssl
#   - the unprivileged user paved-sandbox that runs that PostgreSQL (it refuses to run as root)
#   - kube-apiserver + kubectl 1.20 built from Debian's `kubernetes` source package (cached)
#   - a Python venv with moto[server] (the RDS emulator), helm-python-sdk and regopy
# Honours KUBEBUILDER_ASSETS: when it points at a folder holding kube-apiserver and etcd, nothing
# is built and those binaries are used.
set -euo pipefail

CACHE="${PAVED_CACHE:-$HOME/.cache/paved}"
BIN="$CACHE/bin"
VENV="$CACHE/venv"
K8S_VERSION_TAG="debian-1.20"
mkdir -p "$BIN"

log() { printf '[install] %s\n' "$*" >&2; }

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
[ -x /usr/bin/etcd ] || need_apt+=(etcd-server)
have openssl || need_apt+=(openssl)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need_apt+=(postgresql)
have jq || need_apt+=(jq)
have lua5.1 || need_apt+=(lua5.1)
have curl || need_apt+=(curl)

build_k8s=0
if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]; then
  log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
elif [ ! -x "$BIN/kube-apiserver" ] || [ ! -x "$BIN/kubectl" ] || [ "$(cat "$BIN/.version" 2>/dev/null)" != "$K8S_VERSION_TAG" ]; then
  build_k8s=1
  have go || need_apt+=(golang-go)
  have rsync || need_apt+=(rsync)
  have dpkg-source || need_apt+=(dpkg-dev)
  have make || need_apt+=(make)
  [ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ] || need_apt+=(golang-github-modern-go-reflect2-dev)
  [ -d /usr/share/gocode/src/github.com/json-iterator/go ] || need_apt+=(golang-github-json-iterator-go-dev)
fi

if [ "$build_k8s" = 1 ] && [ ! -f /etc/apt/sources.list.d/debian-src.sources ]; then
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > /etc/apt/sources.list.d/debian-src.sources
  need_update=1
fi

if [ "${#need_apt[@]}" -gt 0 ] || [ "${need_update:-0}" = 1 ]; then
  log "apt-get install ${need_apt[*]:-}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  [ "${#need_apt[@]}" -gt 0 ] && apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Debian's package also sets up a cluster of its own (15/main); the sandbox never uses it (e2e/env.sh
# runs a private one), so it stays down unless something else started it.
if [ "$(id -u)" = 0 ] && ! id -u paved-sandbox >/dev/null 2>&1; then
  log "creating the system user paved-sandbox (runs the sandbox PostgreSQL)"
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin paved-sandbox
fi

if [ "$build_k8s" = 1 ]; then
  SRC_PARENT="$CACHE/k8s-src"
  mkdir -p "$SRC_PARENT"
  SRC=$(find "$SRC_PARENT" -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
  if [ -z "$SRC" ]; then
    log "fetching Debian's kubernetes source package (34 MB)"
    (cd "$SRC_PARENT" && apt-get source -qq kubernetes >/dev/null 2>&1 || apt-get source kubernetes)
    SRC=$(find "$SRC_PARENT" -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
  fi
  log "patching vendored reflect2/json-iterator (broken on Go >= 1.18)"
  for pkg in github.com/modern-go/reflect2 github.com/json-iterator/go; do
    rm -rf "$SRC/vendor/$pkg"
    cp -r "/usr/share/gocode/src/$pkg" "$SRC/vendor/$pkg"
    rm -f "$SRC/vendor/$pkg/go.mod"
  done
  log "building kube-apiserver and kubectl (about 5 minutes on 2 cores, once)"
  (
    cd "$SRC"
    export GOPATH="$SRC/.go" CGO_ENABLED=0 GOFLAGS=-mod=vendor
    mkdir -p .go/src/k8s.io
    [ -e .go/src/k8s.io/kubernetes ] || ln -s ../../.. .go/src/k8s.io/kubernetes
    make WHAT="cmd/kube-apiserver cmd/kubectl" >"$CACHE/k8s-build.log" 2>&1 || { tail -n 40 "$CACHE/k8s-build.log" >&2; exit 1; }
  )
  cp "$SRC/_output/bin/kube-apiserver" "$SRC/_output/bin/kubectl" "$BIN/"
  echo "$K8S_VERSION_TAG" > "$BIN/.version"
  rm -rf "$SRC/.go/pkg" "$SRC/_output/local/go/cache" 2>/dev/null || true
fi

if [ ! -x "$VENV/bin/moto_server" ] || [ ! -f "$VENV/.paved-ok" ]; then
  log "creating Python venv with moto[server], helm-python-sdk, regopy"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check 'moto[server]' helm-python-sdk regopy pyyaml
  touch "$VENV/.paved-ok"
fi
log "ok: $BIN, $VENV"
