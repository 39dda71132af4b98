#!/usr/bin/env bash
# Drops what interrupted integration-test runs left behind: databases billing_test_<id> and
# the RabbitMQ queues of their namespace test-<id>. Never what a running test still uses: a
# database with a connection is not dropped (no FORCE), and a namespace's queues go only once
# its database is gone — so `make test` can start while another checkout's tests or a
# benchmark are running.
set -euo pipefail
URL=${TEST_DATABASE_SERVER:-postgres://postgres@127.0.0.1:5432}
for db in $(psql "$URL/postgres" -tAc "SELECT datname FROM pg_database WHERE datname LIKE 'billing_test_%'"); do
  psql "$URL/postgres" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
done
if command -v rabbitmqctl >/dev/null; then
  live=" $(psql "$URL/postgres" -tAc "SELECT string_agg(substr(datname, 14), ' ') FROM pg_database WHERE datname LIKE 'billing_test_%'") "
  for q in $(rabbitmqctl list_queues name --quiet --no-table-headers 2>/dev/null | grep '^test-' || true); do
    id=${q#test-}
    id=${id%%.*}
    case "$live" in
      *" $id "*) ;; # its test is still running
      *) rabbitmqctl delete_queue "$q" >/dev/null 2>&1 || true ;;
    esac
  done
fi
