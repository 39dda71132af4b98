#!/usr/bin/env bash
# The demo story so far, against what `scripts/up.sh` started: a seeded Stripe book, a payment
# that fails, its signed webhooks verified and stored by ingress and relayed onto the bus.
# (Grows as sync, matching, risk and the API land: signals, health, widget, chat.)
set -euo pipefail
cd "$(dirname "$0")/.."
FAKE=http://${STRIPE_FAKE_LISTEN:-127.0.0.1:12111}
INGRESS=http://127.0.0.1:8081
PSQL="psql postgres://postgres@127.0.0.1:5432/billing -tA"

set -a; source .run/dev-secrets.env; set +a
BILLINGCTL=${CARGO_TARGET_DIR:-$HOME/.cache/billing-target}/release/billingctl
ADMIN_TOKEN=$($BILLINGCTL token --tenant demo --user demo-admin --role admin)

echo
echo "== An admin connects Stripe with a read-only restricted key (validated, sealed with AES-256-GCM)"
curl -s -X POST http://127.0.0.1:8080/api/integrations/stripe/connect -H "authorization: Bearer $ADMIN_TOKEN" \
  -H 'content-type: application/json' -d '{"restricted_key":"rk_test_fake"}' | python3 -c '
import json, sys
r = json.load(sys.stdin)
if "error" in r:
    print("  connect:", r["error"]["message"])
else:
    print("  connected", r["account_id"], "as", r["kind"], "key", r["secret_hint"])'
curl -s http://127.0.0.1:8080/api/integrations/stripe/connections -H "authorization: Bearer $ADMIN_TOKEN" | python3 -c '
import json, sys
for c in json.load(sys.stdin)["data"]:
    print("  connection", c["id"], c["account_id"], c["kind"], c["secret_hint"], c["status"])'
CONNECTION=$(curl -s http://127.0.0.1:8080/api/integrations/stripe/connections -H "authorization: Bearer $ADMIN_TOKEN" | python3 -c '
import json, sys
active = [c for c in json.load(sys.stdin)["data"] if c["status"] == "active"]
print(active[0]["id"] if active else "")')
echo "  without a token: $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/api/integrations/stripe/connections)"

echo
echo "== Connecting queued a backfill; the sync worker walks Stripe's lists (rate limited)"
if [[ -n $CONNECTION ]]; then
  if [[ $($PSQL -c "SELECT count(*) FROM billing.sync_runs WHERE connection_id = '$CONNECTION' AND kind = 'backfill'" 2>/dev/null || echo 0) -gt 0 ]]; then
    # Connected by an earlier demo run: queue a fresh backfill and follow it.
    $BILLINGCTL sync --connection "$CONNECTION" --follow 2>&1 | tail -4 | sed 's/^/  /' || true
  else
    $BILLINGCTL sync --connection "$CONNECTION" --progress 2>&1 | tail -4 | sed 's/^/  /' || true
  fi
fi
echo
echo "== Billing truth in Postgres (schema billing)"
$PSQL -F ' | ' -c "SELECT 'customers', count(*)::text FROM billing.stripe_customers
  UNION ALL SELECT 'subscriptions ' || status, count(*)::text FROM billing.stripe_subscriptions GROUP BY status
  UNION ALL SELECT 'invoices ' || coalesce(status, '-'), count(*)::text FROM billing.stripe_invoices GROUP BY status
  UNION ALL SELECT 'failed payment attempts', count(*)::text FROM billing.payment_attempts WHERE outcome = 'failed'" | sed 's/^/  /'
echo "  MRR by currency:"
$PSQL -F ' | ' -c "SELECT currency, round(sum(mrr_cents)/100.0, 2) FROM billing.stripe_subscriptions GROUP BY currency ORDER BY 2 DESC" | sed 's/^/    /'
echo "  customers in dunning (payment patterns):"
$PSQL -F ' | ' -c "SELECT stripe_customer_id, dunning_stage, failed_attempts_30d, open_invoices FROM billing.payment_patterns WHERE dunning_stage <> 'none' ORDER BY failed_attempts_30d DESC LIMIT 5" | sed 's/^/    /'

echo
echo "== Stripe fake: seeded book of business"
curl -s "$FAKE/_admin/summary" | python3 -c '
import json,sys
s=json.load(sys.stdin)
print(json.dumps({k: s[k] for k in s if k in ("accounts","counts","clock","now","webhooks")}, indent=1)[:1500])'

echo
echo "== CSCX accounts imported for matching (one per company in the seeded book)"
ACCOUNTS=.run/demo-accounts.jsonl
curl -s "$FAKE/_admin/truth" | python3 -c '
import json, sys
seen = set()
for c in json.load(sys.stdin)["customers"]:
    if c["company_id"] in seen:
        continue
    seen.add(c["company_id"])
    print(json.dumps({"account_id": c["company_id"], "name": c["company_name"], "domains": [c["company_domain"]]}))
' >"$ACCOUNTS"
$BILLINGCTL import-accounts "$ACCOUNTS" --tenant demo | tail -3 | sed 's/^/  /'

# A customer with an active subscription, from the truth file.
CUSTOMER=$(curl -s "$FAKE/_admin/truth" | python3 -c '
import json,sys
t=json.load(sys.stdin)
for c in t["customers"]:
    if any(s["status"]=="active" and s["mrr"]>0 for s in c["subscriptions"]) and c["failed_payment_attempts"]==0:
        print(c["customer"]); break
')
echo
echo "== A payment fails for $CUSTOMER (Stripe sends signed webhooks to ingress)"
before=$($PSQL -c "SELECT count(*) FROM ingress.events" 2>/dev/null || echo 0)
started=$($PSQL -c "SELECT now()")
curl -s -X POST "$FAKE/_admin/trigger/fail_payment" -H 'content-type: application/json' \
  -d "{\"customer\":\"$CUSTOMER\"}" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("events sent:", ", ".join(r.get("event_types", [])))'

for _ in $(seq 1 40); do
  after=$($PSQL -c "SELECT count(*) FROM ingress.events")
  unpublished=$($PSQL -c "SELECT count(*) FROM ingress.events WHERE published_at IS NULL")
  [[ $after -gt $before && $unpublished -eq 0 ]] && break
  sleep 0.25
done
echo
echo "== Ingress: verified, stored once, relayed to the stripe.events exchange"
$PSQL -F ' | ' -c "SELECT event_id, event_type, tenant_id, to_char(received_at,'HH24:MI:SS.MS'), CASE WHEN published_at IS NULL THEN 'pending' ELSE 'published' END FROM ingress.events WHERE received_at >= '$started' ORDER BY id DESC LIMIT 10"
echo
echo "== Sync worker: the failure applied to billing and published as facts on the billing exchange"
for _ in $(seq 1 40); do
  applied=$($PSQL -c "SELECT count(*) FROM billing.outbox WHERE routing_key = 'payment.failed' AND created_at >= '$started'")
  [[ $applied -gt 0 ]] && break
  sleep 0.25
done
$PSQL -F ' | ' -c "SELECT stripe_invoice_id, status, attempt_count, amount_remaining, to_char(next_payment_attempt, 'YYYY-MM-DD') FROM billing.stripe_invoices WHERE stripe_customer_id = '$CUSTOMER' ORDER BY created_at DESC LIMIT 2" | sed 's/^/  invoice  /'
$PSQL -F ' | ' -c "SELECT charge_id, outcome, failure_code, attempt_number FROM billing.payment_attempts WHERE stripe_customer_id = '$CUSTOMER' ORDER BY source_created DESC, attempted_at DESC LIMIT 2" | sed 's/^/  attempt  /'
$PSQL -F ' | ' -c "SELECT routing_key, count(*) FROM billing.outbox WHERE created_at >= '$started' GROUP BY routing_key ORDER BY 1" | sed 's/^/  fact     /'

echo
echo "== Ingress metrics"
curl -s "$INGRESS/metrics" | grep -E '^ingress_(webhooks_received|webhooks_rejected|webhooks_duplicate|events_published)_total' || true
echo
echo "== A forged webhook is refused"
curl -s -w ' (HTTP %{http_code})\n' -X POST "$INGRESS/api/integrations/stripe/webhook" \
  -H 'content-type: application/json' -H "stripe-signature: t=$(date +%s),v1=$(printf '0%.0s' {1..64})" \
  -d '{"id":"evt_forged","object":"event","type":"invoice.paid","created":1}'
echo
sleep 5 # RabbitMQ refreshes queue statistics every few seconds
echo "== Queues (messages waiting for the services that will consume them)"
rabbitmqctl list_queues name messages --quiet --no-table-headers 2>/dev/null | grep -vE '^test-' | sort | sed 's/^/  /' || true
echo
echo "Services: make status  •  logs: .run/logs/  •  stop: make down"
