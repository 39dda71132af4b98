#!/usr/bin/env bash
# Drops databases that integration tests create (billing_test_*) and that an interrupted run left.
set -euo pipefail
URL=${TEST_DATABASE_SERVER:-postgres://postgres@127.0.0.1:5432}
for db in $(psql "$URL/postgres" -tAc "SELECT datname FROM pg_database WHERE datname LIKE 'billing_test_%'"); do
  psql "$URL/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
done
# Queues and exchanges of interrupted runs (namespace "test-<id>.").
if command -v rabbitmqctl >/dev/null; then
  for q in $(rabbitmqctl list_queues name --quiet --no-table-headers 2>/dev/null | grep '^test-' || true); do
    rabbitmqctl delete_queue "$q" >/dev/null 2>&1 || true
  done
fi
