-- The risk engine's state: what it needs to know of each Stripe customer (link, default card,
-- open invoices, subscriptions' MRR, last failures), the signals it raised, account health,
-- CSM alert rules and the alerts sent. One writer (risk-engine); query-api reads the views.

-- Which CSCX account each Stripe customer belongs to (matching's link.changed, newest version).
CREATE TABLE links (
    tenant_id          TEXT NOT NULL,
    stripe_customer_id TEXT NOT NULL,
    stripe_account_id  TEXT NOT NULL,
    account_id         TEXT,
    csm_user_id        TEXT,
    version            BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, stripe_customer_id)
);
CREATE INDEX links_account ON links (tenant_id, account_id) WHERE account_id IS NOT NULL;

CREATE TABLE customers (
    tenant_id              TEXT NOT NULL,
    stripe_customer_id     TEXT NOT NULL,
    stripe_account_id      TEXT NOT NULL,
    default_payment_method TEXT,
    delinquent             BOOLEAN NOT NULL DEFAULT false,
    deleted                BOOLEAN NOT NULL DEFAULT false,
    source_occurred_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, stripe_customer_id)
);

-- Card expiry only: brand, last four, month and year.
CREATE TABLE cards (
    tenant_id          TEXT NOT NULL,
    payment_method_id  TEXT NOT NULL,
    stripe_customer_id TEXT NOT NULL,
    brand              TEXT NOT NULL,
    last4              TEXT NOT NULL CHECK (last4 ~ '^[0-9]{4}$' OR last4 = ''),
    exp_month          SMALLINT NOT NULL,
    exp_year           SMALLINT NOT NULL,
    detached           BOOLEAN NOT NULL DEFAULT false,
    source_occurred_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, payment_method_id)
);
CREATE INDEX cards_customer ON cards (tenant_id, stripe_customer_id);

-- Latest state of invoices (the daily scan re-evaluates the open ones).
CREATE TABLE invoices (
    tenant_id              TEXT NOT NULL,
    stripe_invoice_id      TEXT NOT NULL,
    stripe_customer_id     TEXT NOT NULL,
    stripe_subscription_id TEXT,
    status                 TEXT NOT NULL,
    amount_due             BIGINT NOT NULL,
    amount_remaining       BIGINT NOT NULL,
    currency               TEXT NOT NULL,
    attempt_count          INTEGER NOT NULL,
    next_payment_attempt   TIMESTAMPTZ,
    due_date               TIMESTAMPTZ,
    paid_at                TIMESTAMPTZ,
    billing_reason         TEXT,
    -- When we first saw a failed attempt (the delinquency age counts from it).
    first_failed_at        TIMESTAMPTZ,
    source_occurred_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, stripe_invoice_id)
);
CREATE INDEX invoices_open ON invoices (tenant_id) WHERE status = 'open';

-- Subscriptions' MRR, for revenue at risk.
CREATE TABLE subscriptions (
    tenant_id              TEXT NOT NULL,
    stripe_subscription_id TEXT NOT NULL,
    stripe_customer_id     TEXT NOT NULL,
    status                 TEXT NOT NULL,
    mrr                    BIGINT NOT NULL,
    currency               TEXT NOT NULL,
    cancel_at_period_end   BOOLEAN NOT NULL,
    source_occurred_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, stripe_subscription_id)
);
CREATE INDEX subscriptions_customer ON subscriptions (tenant_id, stripe_customer_id);

-- The newest failed charge per customer: its code enriches the invoice's signal.
CREATE TABLE payment_failures (
    tenant_id          TEXT NOT NULL,
    stripe_customer_id TEXT NOT NULL,
    charge_id          TEXT NOT NULL,
    failure_code       TEXT,
    failure_message    TEXT,
    amount             BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    attempted_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, stripe_customer_id)
);

-- Signals: at most one open per (tenant, kind, cause_key); a raise after a resolve is a new row.
CREATE TABLE signals (
    id                 UUID PRIMARY KEY,
    tenant_id          TEXT NOT NULL,
    kind               TEXT NOT NULL,
    cause_key          TEXT NOT NULL,
    stripe_customer_id TEXT NOT NULL,
    stripe_account_id  TEXT NOT NULL,
    -- The customer's CSCX account now (moves with the link); NULL while unlinked.
    account_id         TEXT,
    severity           TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    summary            TEXT NOT NULL,
    evidence           JSONB NOT NULL,
    objects            TEXT[] NOT NULL,
    -- When Stripe saw the cause; when we raised, last changed and resolved it.
    occurred_at        TIMESTAMPTZ NOT NULL,
    raised_at          TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    resolved_at        TIMESTAMPTZ,
    resolution         TEXT,
    -- backfill, event, reconcile, refetch, scan.
    source             TEXT NOT NULL
);
CREATE UNIQUE INDEX signals_one_open ON signals (tenant_id, kind, cause_key) WHERE resolved_at IS NULL;
CREATE INDEX signals_account ON signals (tenant_id, account_id, raised_at DESC);
CREATE INDEX signals_customer_open ON signals (tenant_id, stripe_customer_id) WHERE resolved_at IS NULL;

-- Billing health per CSCX account, with the components that explain it.
CREATE TABLE health (
    tenant_id   TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    score       SMALLINT NOT NULL CHECK (score BETWEEN 0 AND 100),
    band        TEXT NOT NULL,
    components  JSONB NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL,
    version     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, account_id)
);

-- CSM alert rules (from query-api's AlertRuleRequested).
CREATE TABLE alert_rules (
    tenant_id    TEXT NOT NULL,
    rule_id      TEXT NOT NULL,
    csm_user_id  TEXT NOT NULL,
    kinds        TEXT[] NOT NULL,
    min_severity TEXT NOT NULL,
    scope        TEXT NOT NULL CHECK (scope IN ('mine', 'tenant')),
    delivery     TEXT NOT NULL CHECK (delivery IN ('immediate', 'hourly')),
    created_by   TEXT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, rule_id)
);

-- One alert per signal and CSM, whatever the number of matching rules or raises.
CREATE TABLE alerts (
    id          UUID PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    signal_id   UUID NOT NULL REFERENCES signals (id),
    csm_user_id TEXT NOT NULL,
    rule_id     TEXT NOT NULL,
    delivery    TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (signal_id, csm_user_id)
);
CREATE INDEX alerts_csm ON alerts (tenant_id, csm_user_id, created_at DESC);

-- Events for the `risk` exchange (platform::outbox).
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    exchange     TEXT NOT NULL,
    routing_key  TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    message_type TEXT NOT NULL,
    tenant_id    TEXT NOT NULL,
    traceparent  TEXT,
    payload      BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Read models for query-api.
CREATE VIEW risk.account_signals AS
SELECT id AS signal_id, tenant_id, account_id, stripe_customer_id, kind, cause_key, severity, summary,
       evidence, objects, occurred_at, raised_at, updated_at, resolved_at, resolution
FROM risk.signals;

CREATE VIEW risk.account_health AS
SELECT tenant_id, account_id, score, band, components, computed_at FROM risk.health;

CREATE VIEW risk.csm_alerts AS
SELECT a.id AS alert_id, a.tenant_id, a.csm_user_id, a.rule_id, a.delivery, a.created_at,
       s.id AS signal_id, s.kind, s.severity, s.summary, s.account_id, s.resolved_at
FROM risk.alerts a JOIN risk.signals s ON s.id = a.signal_id;

CREATE VIEW risk.csm_alert_rules AS
SELECT tenant_id, rule_id, csm_user_id, kinds, min_severity, scope, delivery, created_by, updated_at
FROM risk.alert_rules;

-- MRR per account and currency of the accounts with an open payment signal.
CREATE VIEW risk.revenue_at_risk AS
SELECT l.tenant_id, l.account_id, l.csm_user_id, s.currency, sum(s.mrr)::BIGINT AS mrr
FROM risk.links l
JOIN risk.subscriptions s ON s.tenant_id = l.tenant_id AND s.stripe_customer_id = l.stripe_customer_id
WHERE l.account_id IS NOT NULL AND s.mrr > 0
  AND EXISTS (SELECT 1 FROM risk.signals g
              WHERE g.tenant_id = l.tenant_id AND g.account_id = l.account_id AND g.resolved_at IS NULL
                AND g.kind IN ('payment_failed', 'dunning_in_progress', 'payment_action_required',
                               'invoice_uncollectible', 'dispute_opened', 'card_expired'))
GROUP BY l.tenant_id, l.account_id, l.csm_user_id, s.currency;
