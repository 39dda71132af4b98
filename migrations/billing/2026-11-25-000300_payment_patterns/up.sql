-- FR-4 payment patterns: how each Stripe customer pays, one row per
-- (tenant_id, account_id, stripe_customer_id) that appears in stripe_customers, a not deleted
-- stripe_invoices row or payment_attempts (an invoice or charge may be stored before its
-- customer). Computed on
-- read by `billing.payment_patterns_at(as_of)`; the view is that function at `now()`.
-- `as_of` is where the failed-attempt windows end (a report or a test can pin it to a known
-- instant); everything else is the latest stored state whatever `as_of` says. Durations are in
-- hours, never days: `interval '1 day'` follows the session's time zone and is 23 or 25 hours
-- across a DST change.
--
-- Invoices count only while not deleted (`deleted_at IS NULL`).
--
-- on_time_rate    Among *judged* invoices — status 'paid', `paid_at` set, `amount_cents > 0`
--                 (a zero invoice is "paid" at finalization and says nothing about the
--                 customer) and a deadline known — the share paid at or before the deadline.
--                 Deadline = `due_date`; without one (charge_automatically invoices) it is
--                 `created_at` + 24 hours: the first charge happens about an hour after
--                 creation when the invoice is finalized, so a later payment means the first
--                 charge failed. 0.0 .. 1.0; NULL when there is no judged invoice.
-- avg_days_late   Mean of (paid_at − deadline) in days (fractional), over the judged invoices
--                 paid after their deadline (the same deadline as above); NULL when none.
-- paid_invoices   How many invoices were judged (the denominator of on_time_rate).
-- failed_attempts_30d / _90d
--                 Charges with outcome 'failed' and `as_of − 720 h < attempted_at <= as_of`
--                 (resp. 2160 h), attributed through payment_attempts.stripe_customer_id.
-- open_invoices   Invoices with status 'open'.
-- dunning_stage   The most severe stage over the customer's invoices that still owe money
--                 (`amount_remaining > 0`), in this order of severity:
--                   'uncollectible'   an invoice with status 'uncollectible' (written off by
--                                     the merchant or by Stripe at the end of its retries;
--                                     paying it later turns it 'paid', which clears this);
--                   'exhausted'       an 'open' invoice with attempt_count >= 1 and no
--                                     next_payment_attempt: charges failed and Stripe will
--                                     not retry any more, the invoice is left past due;
--                   'final_attempts'  an 'open' invoice with attempt_count >= 3 and
--                                     next_payment_attempt set;
--                   'retrying'        an 'open' invoice with attempt_count 1 or 2 and
--                                     next_payment_attempt set;
--                   'none'            anything else (no open invoice, or open ones that were
--                                     never charged, e.g. send_invoice awaiting payment).
CREATE FUNCTION billing.payment_patterns_at(as_of TIMESTAMPTZ)
RETURNS TABLE (
    tenant_id           TEXT,
    account_id          TEXT,
    stripe_customer_id  TEXT,
    on_time_rate        DOUBLE PRECISION,
    avg_days_late       DOUBLE PRECISION,
    paid_invoices       BIGINT,
    failed_attempts_30d BIGINT,
    failed_attempts_90d BIGINT,
    open_invoices       BIGINT,
    dunning_stage       TEXT
)
-- STABLE and a single SELECT: the planner inlines it, so a caller's WHERE reaches the tables.
LANGUAGE sql STABLE
AS $$
    WITH invoices AS (
        SELECT tenant_id,
               account_id,
               stripe_customer_id,
               status,
               paid_at,
               COALESCE(due_date, created_at + interval '24 hours') AS deadline,
               status = 'paid' AND paid_at IS NOT NULL AND amount_cents > 0
                   AND COALESCE(due_date, created_at) IS NOT NULL AS judged,
               CASE
                   WHEN amount_remaining <= 0 THEN 0
                   WHEN status = 'uncollectible' THEN 4
                   WHEN status <> 'open' OR attempt_count < 1 THEN 0
                   WHEN next_payment_attempt IS NULL THEN 3
                   WHEN attempt_count >= 3 THEN 2
                   ELSE 1
               END AS dunning_severity
        FROM billing.stripe_invoices
        WHERE deleted_at IS NULL
    ),
    invoice_stats AS (
        SELECT tenant_id,
               account_id,
               stripe_customer_id,
               count(*) FILTER (WHERE judged) AS paid_invoices,
               count(*) FILTER (WHERE judged AND paid_at <= deadline) AS paid_on_time,
               avg(extract(epoch FROM paid_at - deadline) / 86400)
                   FILTER (WHERE judged AND paid_at > deadline) AS avg_days_late,
               count(*) FILTER (WHERE status = 'open') AS open_invoices,
               max(dunning_severity) AS dunning_severity
        FROM invoices
        GROUP BY tenant_id, account_id, stripe_customer_id
    ),
    attempt_stats AS (
        SELECT tenant_id,
               account_id,
               stripe_customer_id,
               count(*) FILTER (WHERE attempted_at > as_of - interval '720 hours') AS failed_attempts_30d,
               count(*) FILTER (WHERE attempted_at > as_of - interval '2160 hours') AS failed_attempts_90d
        FROM billing.payment_attempts
        WHERE outcome = 'failed'
          AND stripe_customer_id IS NOT NULL
          AND attempted_at <= as_of
        GROUP BY tenant_id, account_id, stripe_customer_id
    ),
    -- From the tables rather than the stats above: a CTE used twice is materialized whole,
    -- which would stop a caller's `WHERE tenant_id = …` from reaching the indexes.
    customers AS (
        SELECT tenant_id, account_id, stripe_customer_id FROM billing.stripe_customers
        UNION
        SELECT tenant_id, account_id, stripe_customer_id FROM billing.stripe_invoices
        WHERE deleted_at IS NULL
        UNION
        SELECT tenant_id, account_id, stripe_customer_id FROM billing.payment_attempts
        WHERE stripe_customer_id IS NOT NULL
    )
    SELECT c.tenant_id,
           c.account_id,
           c.stripe_customer_id,
           (i.paid_on_time::double precision / NULLIF(i.paid_invoices, 0)) AS on_time_rate,
           i.avg_days_late::double precision AS avg_days_late,
           COALESCE(i.paid_invoices, 0) AS paid_invoices,
           COALESCE(a.failed_attempts_30d, 0) AS failed_attempts_30d,
           COALESCE(a.failed_attempts_90d, 0) AS failed_attempts_90d,
           COALESCE(i.open_invoices, 0) AS open_invoices,
           CASE COALESCE(i.dunning_severity, 0)
               WHEN 4 THEN 'uncollectible'
               WHEN 3 THEN 'exhausted'
               WHEN 2 THEN 'final_attempts'
               WHEN 1 THEN 'retrying'
               ELSE 'none'
           END AS dunning_stage
    FROM customers c
    LEFT JOIN invoice_stats i USING (tenant_id, account_id, stripe_customer_id)
    LEFT JOIN attempt_stats a USING (tenant_id, account_id, stripe_customer_id);
$$;

CREATE VIEW billing.payment_patterns AS
SELECT * FROM billing.payment_patterns_at(now());
