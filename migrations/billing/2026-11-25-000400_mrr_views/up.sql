-- MRR and ARR per Stripe customer and currency (never summed across currencies). Per CSCX
-- account, readers join this with the matcher's links (matching schema) — the sum over every
-- Stripe customer linked to the account.
CREATE VIEW customer_mrr AS
SELECT tenant_id,
       account_id,
       stripe_customer_id,
       currency,
       sum(mrr_cents)::BIGINT                               AS mrr_cents,
       (sum(mrr_cents) * 12)::BIGINT                        AS arr_cents,
       count(*) FILTER (WHERE mrr_cents > 0)                AS counting_subscriptions,
       count(*) FILTER (WHERE mrr_error IS NOT NULL)        AS subscriptions_without_mrr
FROM stripe_subscriptions
WHERE deleted_at IS NULL
GROUP BY tenant_id, account_id, stripe_customer_id, currency;
