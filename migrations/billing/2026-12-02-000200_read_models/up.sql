-- Read models for query-api (it reads the billing schema only through these views, never the
-- tables, so the sync worker may reshape its tables freely). Every view keeps `tenant_id` and
-- the Stripe account (`stripe_account_id`) beside the Stripe ids: readers always filter by
-- tenant and by the (stripe_account_id, stripe_customer_id) pairs the matcher linked.

-- A Stripe customer with its default card's brand, last four digits and expiry (nothing more
-- of a card exists in this schema).
CREATE VIEW billing.customer_profiles AS
SELECT c.tenant_id,
       c.account_id AS stripe_account_id,
       c.stripe_customer_id,
       c.email,
       c.name,
       c.currency,
       c.delinquent,
       c.created_at,
       c.deleted_at,
       c.synced_at,
       pm.card_brand,
       pm.card_last4,
       pm.exp_month AS card_exp_month,
       pm.exp_year AS card_exp_year
FROM billing.stripe_customers c
LEFT JOIN billing.payment_methods pm
       ON pm.tenant_id = c.tenant_id AND pm.account_id = c.account_id
      AND pm.payment_method_id = c.default_payment_method AND pm.detached_at IS NULL;

-- A subscription with its items (price, product name, quantity, unit amount, interval).
CREATE VIEW billing.subscription_overview AS
SELECT s.tenant_id,
       s.account_id AS stripe_account_id,
       s.stripe_customer_id,
       s.stripe_subscription_id,
       s.status,
       s.plan_name,
       s.mrr_cents,
       s.currency,
       s.mrr_error,
       s.quantity,
       s.current_period_start,
       s.current_period_end,
       s.cancel_at_period_end,
       s.cancel_at,
       s.canceled_at,
       s.ended_at,
       s.trial_end,
       s.pause_collection,
       s.created_at,
       s.updated_at,
       COALESCE((
           SELECT jsonb_agg(jsonb_build_object(
                      'item_id', i.stripe_item_id,
                      'price_id', i.price_id,
                      'product_id', i.product_id,
                      'product_name', p.name,
                      'quantity', i.quantity,
                      'unit_amount', i.unit_amount,
                      'currency', i.currency,
                      'interval', i.interval,
                      'interval_count', i.interval_count,
                      'usage_type', i.usage_type,
                      'current_period_start', i.current_period_start,
                      'current_period_end', i.current_period_end)
                  ORDER BY i.stripe_item_id)
           FROM billing.subscription_items i
           LEFT JOIN billing.products p
                  ON p.tenant_id = i.tenant_id AND p.account_id = i.account_id
                 AND p.product_id = i.product_id
           WHERE i.tenant_id = s.tenant_id AND i.account_id = s.account_id
             AND i.stripe_subscription_id = s.stripe_subscription_id), '[]'::jsonb) AS items
FROM billing.stripe_subscriptions s
WHERE s.deleted_at IS NULL;

-- Every recorded change of a subscription (plan, quantity, status, MRR) with its movement.
-- `baseline`: first seen by a backfill or reconciliation (a level, not revenue won or lost).
CREATE VIEW billing.subscription_history AS
SELECT tenant_id,
       account_id AS stripe_account_id,
       stripe_customer_id,
       stripe_subscription_id,
       changed_at,
       source,
       source IN ('backfill', 'reconcile') AND status_before IS NULL AS baseline,
       movement,
       status_before,
       status_after,
       plan_before,
       plan_after,
       quantity_before,
       quantity_after,
       mrr_before_cents,
       mrr_after_cents,
       currency
FROM billing.subscription_changes;

-- Invoices newest first per customer (the history page); amounts in minor units.
CREATE VIEW billing.invoice_history AS
SELECT tenant_id,
       account_id AS stripe_account_id,
       stripe_customer_id,
       stripe_invoice_id,
       stripe_subscription_id,
       number,
       amount_cents AS amount_due,
       amount_paid,
       amount_remaining,
       total,
       currency,
       status,
       billing_reason,
       collection_method,
       due_date,
       paid_at,
       attempt_count,
       next_payment_attempt,
       period_start,
       period_end,
       hosted_invoice_url,
       created_at
FROM billing.stripe_invoices
-- Every Stripe invoice has `created`; a row without it is not an invoice we can show.
WHERE deleted_at IS NULL AND created_at IS NOT NULL;

CREATE VIEW billing.invoice_line_items AS
SELECT tenant_id,
       account_id AS stripe_account_id,
       stripe_invoice_id,
       line_id,
       stripe_subscription_id,
       price_id,
       description,
       amount,
       currency,
       quantity,
       period_start,
       period_end
FROM billing.invoice_lines;

-- Charge attempts with their outcome and failure reason (never card data).
CREATE VIEW billing.payment_attempt_history AS
SELECT tenant_id,
       account_id AS stripe_account_id,
       stripe_customer_id,
       stripe_invoice_id,
       charge_id,
       payment_intent_id,
       attempted_at,
       amount,
       currency,
       outcome,
       failure_code,
       failure_message,
       attempt_number
FROM billing.payment_attempts;

-- The invoice history page walks (created_at DESC, id DESC) per customer.
CREATE INDEX stripe_invoices_history ON billing.stripe_invoices
    (tenant_id, account_id, stripe_customer_id, created_at DESC, stripe_invoice_id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX payment_attempts_invoice ON billing.payment_attempts (tenant_id, account_id, stripe_invoice_id)
    WHERE stripe_invoice_id IS NOT NULL;
