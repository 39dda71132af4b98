#!/usr/bin/env bash
# Stops what scripts/up.sh started: SIGTERM, wait for a graceful drain, SIGKILL after 30 s.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=.run
shopt -s nullglob
for pidfile in $RUN/pids/*.pid; do
  name=$(basename "$pidfile" .pid)
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { echo "  $name did not stop in 30 s; killing"; kill -KILL "$pid"; }
    echo "  $name stopped"
  fi
  rm -f "$pidfile"
done
