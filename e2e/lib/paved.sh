# Shared by e2e/demo.sh and e2e/corpus.sh: the steps that put paved on a local control plane.
# Source it after `source $PAVED_E2E_DIR/env` (it reads AWS_ENDPOINT_URL).

# paved_install_crds PAVED KUBECTL: every CRD paved serves, Established. The Instance conversion
# is `None` here (no webhook on the local control plane); correct while no Instance uses
# blueGreenUpdate, restoreToPointInTime or s3Import, the fields whose shape differs by version.
paved_install_crds() {
  "$1" crds --no-conversion-webhook | "$2" apply -f - >/dev/null
  "$2" wait --for=condition=Established crd --all --timeout=60s >/dev/null
}

# paved_local_provider_config KUBECTL: ProviderConfig `default` pointing at the local RDS API.
paved_local_provider_config() {
  "$1" apply -f - <<YAML
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
}

# paved_start PAVED LOG PIDFILE POLL: `paved run` in the background on free loopback ports
# (HEALTH_PORT, METRICS_PORT are set), waiting until /readyz says ok; fails with the log's tail.
paved_start() {
  local paved="$1" log="$2" pidfile="$3" poll="$4" ports
  ports=$(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')
  read -r HEALTH_PORT METRICS_PORT <<<"$ports"
  PAVED_POLL_INTERVAL="$poll" nohup "$paved" run --health-addr "127.0.0.1:$HEALTH_PORT" \
    --metrics-addr "127.0.0.1:$METRICS_PORT" >"$log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$HEALTH_PORT/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { echo "paved exited:"; tail -n 30 "$log"; return 1; }
    sleep 0.5
  done
  echo "paved not ready:"; tail -n 30 "$log"; return 1
}
