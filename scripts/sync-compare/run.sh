#!/usr/bin/env bash
# `make bench-compare`: our backfill against Supabase's Stripe sync engine (npm
# @supabase/stripe-sync-engine, pinned in package.json), on the same seeded book of the
# Stripe fake at the same rate limit, then the same correctness checks on both tools'
# tables (compare.mjs check). Theirs runs twice: at the rate limit, and once more with the
# limit lifted (its best case). Ours runs as the product does: query-api and sync-worker
# processes, a restricted key connected through the API, the backfill it queues.
#
# Env: COMPARE_CUSTOMERS (1000), COMPARE_SEED (7, bench-sync's book), COMPARE_RATE (100 req/s,
# Stripe's live limit), COMPARE_PROFILE (release; debug works too: both sides are bound by
# the rate limit, not by CPU).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=${CARGO_TARGET_DIR:-$HOME/.cache/billing-target}
bin=$target/${COMPARE_PROFILE:-release}
customers=${COMPARE_CUSTOMERS:-1000}
seed=${COMPARE_SEED:-7}
rate=${COMPARE_RATE:-100}
pg=${TEST_DATABASE_SERVER:-postgres://postgres@127.0.0.1:5432}
id=cmp$(date +%s)
# Test-style names: `make test-clean` removes whatever an interrupted run leaves behind.
ours_db=billing_test_${id}
theirs_db=billing_test_${id}_theirs
theirs_free_db=billing_test_${id}_free
namespace=test-${id}.
work=$(mktemp -d)
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for db in "$ours_db" "$theirs_db" "$theirs_free_db"; do
    psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
  for q in $(rabbitmqctl list_queues name --quiet --no-table-headers 2>/dev/null | grep "^$namespace" || true); do
    rabbitmqctl delete_queue "$q" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { # url, what
  for _ in $(seq 1 600); do
    curl -fs "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$2 never answered at $1" >&2
  return 1
}

for b in stripe-fake query-api sync-worker billingctl; do
  [ -x "$bin/$b" ] || { echo "$bin/$b missing: build first (make bench-compare does)" >&2; exit 1; }
done
[ -d "$here/node_modules" ] || (cd "$here" && npm ci --no-audit --no-fund --silent)

fake_port=$(port)
fake=http://127.0.0.1:$fake_port/
"$bin/stripe-fake" serve --listen "127.0.0.1:$fake_port" --rate-limit "$rate" \
  --seed-customers "$customers" --seed "$seed" >"$work/fake.log" 2>&1 &
pids+=($!)
wait_for "${fake}_admin/truth" "stripe-fake"
curl -fs "${fake}_admin/truth" >"$work/truth.json"
export STRIPE_FAKE_URL=$fake TRUTH=$work/truth.json
echo "book: $customers customers (seed $seed), rate limit $rate req/s"

for db in "$theirs_db" "$theirs_free_db"; do psql "$pg/postgres" -qc "CREATE DATABASE \"$db\""; done
echo "== theirs, at $rate req/s"
node "$here/compare.mjs" backfill "$pg/$theirs_db" | tee "$work/theirs.txt"
node "$here/compare.mjs" check theirs "$pg/$theirs_db" | tee -a "$work/theirs.txt"
echo "== theirs, rate limit lifted"
curl -fs -XPOST -H 'content-type: application/json' -d '{"rate_limit": 0}' "${fake}_admin/faults" >/dev/null
node "$here/compare.mjs" backfill "$pg/$theirs_free_db" | sed 's/RESULT sync_engine_/RESULT sync_engine_unlimited_/' | tee "$work/free.txt"
node "$here/compare.mjs" check theirs "$pg/$theirs_free_db" | sed 's/RESULT sync_engine_/RESULT sync_engine_unlimited_/' | tee -a "$work/free.txt"
curl -fs -XPOST -H 'content-type: application/json' -d "{\"rate_limit\": $rate}" "${fake}_admin/faults" >/dev/null

echo "== ours, at $rate req/s"
api_port=$(port)
sync_port=$(port)
master=$(head -c 32 /dev/urandom | base64)
jwt=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')
export DATABASE_URL=$pg/$ours_db AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
export BILLING__AMQP__NAMESPACE=$namespace BILLING_MASTER_KEYS="k1:$master" BILLING_JWT_SECRET=$jwt
export STRIPE_API_BASE=$fake BILLING__TELEMETRY__LOG_FILTER=warn
export BILLING__SYNC_WORKER__REQUESTS_PER_SECOND=$rate
BILLING__QUERY_API__LISTEN=127.0.0.1:$api_port "$bin/query-api" serve >"$work/query-api.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$api_port/readyz" "query-api"
BILLING__SYNC_WORKER__LISTEN=127.0.0.1:$sync_port "$bin/sync-worker" serve >"$work/sync-worker.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$sync_port/readyz" "sync-worker"
token=$("$bin/billingctl" token --tenant compare --user compare-admin --role admin)
started=$(date +%s.%N)
status=$(curl -s -o "$work/connect.json" -w '%{http_code}' -XPOST -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"restricted_key": "rk_test_fake"}' \
  "http://127.0.0.1:$api_port/api/integrations/stripe/connect")
[ "$status" = 201 ] || { echo "connect answered $status: $(cat "$work/connect.json")" >&2; exit 1; }
run=""
for _ in $(seq 1 6000); do
  run=$(psql "$DATABASE_URL" -tAc "SELECT status || ' ' || requests FROM billing.sync_runs WHERE kind = 'backfill' ORDER BY started_at DESC LIMIT 1" 2>/dev/null || true)
  case "$run" in succeeded*|failed*) break ;; esac
  sleep 0.1
done
seconds=$(python3 -c "import time; print(f'{time.time() - $started:.2f}')")
echo "ours: backfill ${run%% *} in $seconds s (connect to done, key check included), ${run##* } requests"
echo "RESULT backfill_completed $([ "${run%% *}" = succeeded ] && echo 1 || echo 0)" | tee "$work/ours.txt"
echo "RESULT backfill_s $seconds" | tee -a "$work/ours.txt"
echo "RESULT backfill_requests ${run##* }" | tee -a "$work/ours.txt"
node "$here/compare.mjs" check ours "$DATABASE_URL" | tee -a "$work/ours.txt"

echo
result() { grep "^RESULT $2 " "$1" | awk '{print $3}'; }
printf '%-34s %14s %14s %20s\n' "" "ours" "sync engine" "sync engine, no limit"
printf '%-34s %14s %14s %20s\n' "completed at $rate req/s" "$(result "$work/ours.txt" backfill_completed)" \
  "$(result "$work/theirs.txt" sync_engine_completed)" "$(result "$work/free.txt" sync_engine_unlimited_completed)"
printf '%-34s %14s %14s %20s\n' "seconds" "$(result "$work/ours.txt" backfill_s)" \
  "$(result "$work/theirs.txt" sync_engine_backfill_s)" "$(result "$work/free.txt" sync_engine_unlimited_backfill_s)"
printf '%-34s %14s %14s %20s\n' "requests" "$(result "$work/ours.txt" backfill_requests)" \
  "$(result "$work/theirs.txt" sync_engine_requests)" "$(result "$work/free.txt" sync_engine_unlimited_requests)"
printf '%-34s %14s %14s %20s\n' "correctness checks passed (of 6)" "$(result "$work/ours.txt" backfill_checks_passed)" \
  "$(result "$work/theirs.txt" sync_engine_checks_passed)" "$(result "$work/free.txt" sync_engine_unlimited_checks_passed)"
