-- The newest state of each dispute (billing `dispute.changed`): an older fact stops at this
-- table, so the rules only ever see a dispute's newest status.
CREATE TABLE disputes (
    tenant_id          TEXT NOT NULL,
    dispute_id         TEXT NOT NULL,
    stripe_customer_id TEXT NOT NULL,
    charge_id          TEXT NOT NULL,
    amount             BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    reason             TEXT NOT NULL,
    status             TEXT NOT NULL,
    evidence_due_by    TIMESTAMPTZ,
    source_occurred_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, dispute_id)
);
CREATE INDEX disputes_customer ON disputes (tenant_id, stripe_customer_id);
