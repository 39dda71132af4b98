#!/usr/bin/env bash
# Starts the Stripe fake and every service in the background from the release build.
#   scripts/up.sh           start (idempotent: a running service is left alone)
#   scripts/up.sh --status  show what runs and where
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/billing-target}/release
RUN=.run
mkdir -p $RUN/logs $RUN/pids

# Local defaults; each can be overridden from the environment.
export STRIPE_FAKE_LISTEN=${STRIPE_FAKE_LISTEN:-127.0.0.1:12111}
export STRIPE_API_BASE=${STRIPE_API_BASE:-http://$STRIPE_FAKE_LISTEN/}
export STRIPE_CONNECT_BASE=${STRIPE_CONNECT_BASE:-http://$STRIPE_FAKE_LISTEN/}
# Demo-only webhook secret shared by the fake (signer) and ingress (verifier).
export STRIPE_WEBHOOK_SECRET=${STRIPE_WEBHOOK_SECRET:-whsec_demo_local_only}
# The fake's platform: its Connect client id and secret key (test-mode values of the fake only).
export STRIPE_CONNECT_CLIENT_ID=${STRIPE_CONNECT_CLIENT_ID:-ca_fake}
export STRIPE_SECRET_KEY=${STRIPE_SECRET_KEY:-sk_test_fake}
export BILLING__TELEMETRY__LOG_FORMAT=${BILLING__TELEMETRY__LOG_FORMAT:-json}
# Local secrets (JWT signing key, master encryption key), made once per checkout and kept in
# .run/ (git-ignored) so data sealed by one run opens in the next. Production injects its own.
if [[ ! -f $RUN/dev-secrets.env ]]; then
  umask 077
  {
    echo "BILLING_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')"
    echo "BILLING_MASTER_KEYS=dev1:$(head -c 32 /dev/urandom | base64)"
  } >"$RUN/dev-secrets.env"
fi
set -a; source "$RUN/dev-secrets.env"; set +a

# name | listen address | command
SERVICES=(
  "stripe-fake|$STRIPE_FAKE_LISTEN|$TARGET/stripe-fake serve --listen $STRIPE_FAKE_LISTEN --webhook-url http://127.0.0.1:8081/api/integrations/stripe/webhook --webhook-secret $STRIPE_WEBHOOK_SECRET --seed-customers ${DEMO_CUSTOMERS:-200} --seed ${DEMO_SEED:-42}"
  "ingress|127.0.0.1:8081|$TARGET/ingress serve"
  "sync-worker|127.0.0.1:9102|$TARGET/sync-worker serve"
  "matcher|127.0.0.1:9103|$TARGET/matcher serve"
  "risk-engine|127.0.0.1:9104|$TARGET/risk-engine serve"
  "query-api|127.0.0.1:8080|$TARGET/query-api serve"
)

running() { [[ -f $RUN/pids/$1.pid ]] && kill -0 "$(cat $RUN/pids/$1.pid)" 2>/dev/null; }

if [[ ${1:-} == --status ]]; then
  for entry in "${SERVICES[@]}"; do
    IFS='|' read -r name addr _ <<<"$entry"
    if running "$name"; then state="running (pid $(cat $RUN/pids/$name.pid))"; else state="stopped"; fi
    printf '  %-12s %-18s %s\n' "$name" "$addr" "$state"
  done
  exit 0
fi

for entry in "${SERVICES[@]}"; do
  IFS='|' read -r name addr cmd <<<"$entry"
  if running "$name"; then continue; fi
  # shellcheck disable=SC2086
  nohup $cmd >>"$RUN/logs/$name.log" 2>&1 &
  echo $! >"$RUN/pids/$name.pid"
done

# Wait until every service reports ready (the fake has no /readyz; its port is enough).
for entry in "${SERVICES[@]}"; do
  IFS='|' read -r name addr _ <<<"$entry"
  path=/readyz; [[ $name == stripe-fake ]] && path=/v1/customers
  ok=0
  for _ in $(seq 1 120); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://$addr$path" || true)
    if [[ $code == 200 || ($name == stripe-fake && $code =~ ^(200|401)$) ]]; then ok=1; break; fi
    running "$name" || break
    sleep 0.5
  done
  if [[ $ok == 1 ]]; then
    printf '  %-12s ready on http://%s\n' "$name" "$addr"
  else
    printf '  %-12s NOT READY (see %s)\n' "$name" "$RUN/logs/$name.log"; tail -5 "$RUN/logs/$name.log" || true; exit 1
  fi
done
echo "Logs: $RUN/logs/  •  stop with: make down"
