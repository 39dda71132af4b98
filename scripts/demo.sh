#!/usr/bin/env bash
# The demo story, against what `scripts/up.sh` started: Stripe connected and backfilled, CSCX
# accounts imported and matched to Stripe customers, a CSM asking in chat to be alerted on
# payment failures, then a payment that fails: signed webhooks → ingress → sync worker →
# risk engine → signal, alert and billing health; then the CSM's chat questions about that
# account and the billing widget's URL.
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
CSM_TOKEN=$($BILLINGCTL token --tenant demo --user demo-csm --role csm)
api() { curl -s "http://127.0.0.1:8080$1" -H "authorization: Bearer $CSM_TOKEN" "${@:2}"; }

echo
echo "== Matcher: every Stripe customer linked to its CSCX account (metadata id, email domain, name)"
customers=$($PSQL -c "SELECT count(*) FROM billing.stripe_customers WHERE tenant_id = 'demo'")
for _ in $(seq 1 60); do
  decided=$($PSQL -c "SELECT count(*) FROM matching.customer_links WHERE tenant_id = 'demo'" 2>/dev/null || echo 0)
  pending=$($PSQL -c "SELECT count(*) FROM matching.pending" 2>/dev/null || echo 1)
  [[ $decided -ge $customers && $pending -eq 0 ]] && break
  sleep 0.5
done
$PSQL -F ' | ' -c "SELECT status, coalesce(method, '-'), count(*), round(avg(confidence)::numeric, 2) FROM matching.customer_links WHERE tenant_id = 'demo' GROUP BY 1, 2 ORDER BY 3 DESC" | sed 's/^/  /'
echo "  waiting for a person (GET /api/matching/review):"
api "/api/matching/review?limit=3" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["data"]:
    print("    %s  %-9s %s <%s>: %s" % (r["stripe_customer_id"], r["status"], r["customer_name"], r["email"], (r["reason"] or "")[:90]))'

echo
echo "== A CSM asks in chat: \"alert me on payment failures for all accounts\""
api /api/stripe/chat -X POST -H 'content-type: application/json' \
  -d '{"text":"alert me on payment failures for all accounts"}' | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("  reply:", r.get("reply") or r.get("error", {}).get("message"))'
echo
echo "== Risk engine: signals raised from the backfilled truth (stored and scored, not alerted: old news)"
for _ in $(seq 1 40); do
  n=$($PSQL -c "SELECT count(*) FROM risk.signals WHERE tenant_id = 'demo'" 2>/dev/null || echo 0)
  [[ $n -gt 0 ]] && break
  sleep 0.5
done
$PSQL -F ' | ' -c "SELECT kind, severity, count(*) FROM risk.account_signals WHERE tenant_id = 'demo' AND resolved_at IS NULL GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10" | sed 's/^/  /'
echo "  least healthy accounts:"
$PSQL -F ' | ' -c "SELECT account_id, score, band FROM risk.account_health WHERE tenant_id = 'demo' ORDER BY score LIMIT 5" | sed 's/^/    /'

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
echo "== Risk engine: the failure is a signal on the customer's account, the CSM is alerted, health drops"
for _ in $(seq 1 40); do
  n=$($PSQL -c "SELECT count(*) FROM risk.signals WHERE stripe_customer_id = '$CUSTOMER' AND kind = 'payment_failed' AND resolved_at IS NULL")
  [[ $n -gt 0 ]] && break
  sleep 0.25
done
$PSQL -F ' | ' -c "SELECT kind, severity, coalesce(account_id, '(unlinked)'), summary, to_char(raised_at, 'HH24:MI:SS.MS') FROM risk.account_signals WHERE stripe_customer_id = '$CUSTOMER' AND resolved_at IS NULL ORDER BY raised_at" | sed 's/^/  signal  /'
$PSQL -F ' | ' -c "SELECT round(extract(epoch FROM (s.raised_at - e.received_at)) * 1000) || ' ms from webhook to signal' FROM risk.signals s JOIN ingress.events e ON e.event_type = 'invoice.payment_failed' AND e.received_at >= '$started' WHERE s.stripe_customer_id = '$CUSTOMER' AND s.kind = 'payment_failed' ORDER BY s.raised_at DESC LIMIT 1" | sed 's/^/  /'
for _ in $(seq 1 20); do
  n=$(api /api/alerts | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]))')
  [[ $n -gt 0 ]] && break
  sleep 0.25
done
echo "  alerts for demo-csm (GET /api/alerts):"
api /api/alerts | python3 -c '
import json, sys
for a in json.load(sys.stdin)["data"][:3]:
    print("    %s %-8s %s  account %s" % (a["kind"], a["severity"], a["summary"], a["account_id"]))'
$PSQL -F ' | ' -c "SELECT h.account_id, h.score, h.band, jsonb_array_length(h.components) || ' component(s)' FROM risk.account_health h JOIN risk.links l ON l.tenant_id = h.tenant_id AND l.account_id = h.account_id WHERE l.stripe_customer_id = '$CUSTOMER'" | sed 's/^/  health  /'

ACCOUNT=$($PSQL -c "SELECT account_id FROM matching.customer_links WHERE tenant_id = 'demo' AND stripe_customer_id = '$CUSTOMER' AND status IN ('linked', 'manual') LIMIT 1")
if [[ -n $ACCOUNT ]]; then
  ACCOUNT_NAME=$($PSQL -c "SELECT name FROM matching.cscx_accounts WHERE tenant_id = 'demo' AND account_id = '$ACCOUNT'")
  echo
  echo "== The CSM asks the chat about $ACCOUNT_NAME (POST /api/stripe/chat)"
  for question in "What's the billing status for $ACCOUNT_NAME?" "Any failed payments for $ACCOUNT_NAME?" \
                  "Show MRR for $ACCOUNT_NAME" "Alert me on payment failures"; do
    echo "  > $question"
    # (A name several accounts share is answered with a choice of accounts.)
    api /api/stripe/chat -X POST -H 'content-type: application/json' \
      -d "$(python3 -c 'import json, sys; print(json.dumps({"text": sys.argv[1]}))' "$question")" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("    " + (r.get("reply") or r.get("error", {}).get("message", "?")))' || true
  done
  WIDGET_TOKEN=$($BILLINGCTL token --tenant demo --user demo-csm --role csm --ttl 3600)
  echo
  echo "== Billing widget for $ACCOUNT_NAME (embeddable in CSCX; token valid 1 h):"
  echo "  http://127.0.0.1:8080/ui/accounts/$ACCOUNT?token=$WIDGET_TOKEN"
  echo "  status $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:8080/ui/accounts/$ACCOUNT?token=$WIDGET_TOKEN")," \
       "JSON behind it: GET /api/stripe/customer|subscriptions|invoices|mrr|signals/$ACCOUNT"
fi

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
