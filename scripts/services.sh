#!/usr/bin/env bash
# Start the local services the test suite talks to, when they are not already up.
# PostgreSQL: 127.0.0.1:5432, trust auth, database "test" (the machine's own cluster).
set -euo pipefail
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sed -n 1p)" main start
  for _ in $(seq 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432
