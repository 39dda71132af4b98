-- Disputes (`charge.dispute.*`, `/v1/disputes`). Stripe's dispute names no customer: the
-- sync worker resolves it through the disputed charge (payment_attempts, or the charge
-- fetched from the API) and keeps it here, so a dispute is attributable without a join.
CREATE TABLE billing.disputes (
    tenant_id          TEXT NOT NULL,
    account_id         TEXT NOT NULL,
    dispute_id         TEXT NOT NULL,
    charge_id          TEXT NOT NULL,
    payment_intent_id  TEXT,
    -- NULL while the charge's customer is unknown (a guest charge, or one Stripe no longer has).
    stripe_customer_id TEXT,
    amount             BIGINT NOT NULL CHECK (amount >= 0),
    currency           TEXT NOT NULL,
    reason             TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN (
                           'warning_needs_response', 'warning_under_review', 'warning_closed',
                           'needs_response', 'under_review', 'won', 'lost', 'prevented',
                           'charge_refunded')),
    evidence_due_by    TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL,
    source_created     BIGINT NOT NULL,
    synced_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, account_id, dispute_id)
);
CREATE INDEX disputes_customer ON billing.disputes (tenant_id, account_id, stripe_customer_id, created_at DESC);
CREATE INDEX disputes_charge ON billing.disputes (tenant_id, account_id, charge_id);
-- Reconciliation re-reads the disputes still open.
CREATE INDEX disputes_open ON billing.disputes (tenant_id, account_id)
    WHERE status IN ('warning_needs_response', 'warning_under_review', 'needs_response', 'under_review');

-- Read model for query-api: a customer's disputes, newest first, with whether each is still open.
CREATE VIEW billing.dispute_history AS
SELECT tenant_id,
       account_id AS stripe_account_id,
       stripe_customer_id,
       dispute_id,
       charge_id,
       payment_intent_id,
       amount,
       currency,
       reason,
       status,
       status IN ('warning_needs_response', 'warning_under_review', 'needs_response', 'under_review') AS open,
       evidence_due_by,
       created_at,
       synced_at
FROM billing.disputes;
