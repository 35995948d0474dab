#!/usr/bin/env bash
# Debian's HAProxy (the replica test's load balancer) and promtool (from the prometheus
# package: checks and unit-tests deploy/prometheus/ alert rules). Installed only when
# missing; hadolint, kubernetes-validate and moto come from PyPI through the dev extra.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (apt)" >&2
  $SUDO apt-get update -qq
  # --no-install-recommends: promtool only, not the exporters and web assets.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  # Debian starts the services it installs; the tests run their own instances.
  for service in "${missing[@]}"; do
    $SUDO service "$service" stop >/dev/null 2>&1 || true
  done
fi
(command -v haproxy || echo /usr/sbin/haproxy) >/dev/null
/usr/sbin/haproxy -v | sed -n 1p  # sed reads it all: head would close the pipe early (SIGPIPE under pipefail)
promtool --version 2>&1 | sed -n 1p
