-- Stripe's truth per connected account. The PRD's three tables keep their names and columns;
-- they are extended (tenant, Stripe account, more fields) and widened where the PRD's type
-- would lose information (cents as BIGINT, period bounds as timestamps). Every object is keyed
-- by (tenant_id, account_id, Stripe id) so two connected accounts never collide.
--
-- `source_created` is the Unix time of the state we hold: the event's `created` for webhook
-- updates, the fetch time for API reads. A change is applied only when it is newer; a tie
-- means "refetch from the API" (see docs/architecture.md, Correctness).

CREATE TABLE stripe_customers (
    id                     UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id              TEXT NOT NULL,
    account_id             TEXT NOT NULL,
    stripe_customer_id     TEXT NOT NULL,
    -- The CSCX account this customer belongs to (from the matcher's links). TEXT, not a
    -- foreign key: CSCX's accounts live in the host platform.
    customer_id            TEXT,
    email                  TEXT,
    name                   TEXT,
    currency               TEXT,
    delinquent             BOOLEAN NOT NULL DEFAULT false,
    metadata               JSONB NOT NULL DEFAULT '{}',
    default_payment_method TEXT,
    created_at             TIMESTAMPTZ,
    deleted_at             TIMESTAMPTZ,
    source_created         BIGINT NOT NULL,
    synced_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, account_id, stripe_customer_id)
);

CREATE TABLE products (
    tenant_id      TEXT NOT NULL,
    account_id     TEXT NOT NULL,
    product_id     TEXT NOT NULL,
    name           TEXT NOT NULL,
    active         BOOLEAN NOT NULL,
    source_created BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, account_id, product_id)
);

-- Prices as Stripe rendered them (with `tiers` expanded): MRR needs tiers, which an item's
-- embedded price never carries. Prices hold no personal or payment data.
CREATE TABLE prices (
    tenant_id      TEXT NOT NULL,
    account_id     TEXT NOT NULL,
    price_id       TEXT NOT NULL,
    product_id     TEXT NOT NULL,
    object         JSONB NOT NULL,
    source_created BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, account_id, price_id)
);

-- Coupons as Stripe rendered them: discounts refer to them by id (`source.coupon`).
CREATE TABLE coupons (
    tenant_id      TEXT NOT NULL,
    account_id     TEXT NOT NULL,
    coupon_id      TEXT NOT NULL,
    object         JSONB NOT NULL,
    source_created BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, account_id, coupon_id)
);

CREATE TABLE stripe_subscriptions (
    id                     UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id              TEXT NOT NULL,
    account_id             TEXT NOT NULL,
    stripe_customer_id     TEXT NOT NULL,
    stripe_subscription_id TEXT NOT NULL,
    status                 VARCHAR(20) NOT NULL,
    plan_name              TEXT,
    mrr_cents              BIGINT NOT NULL DEFAULT 0,
    currency               TEXT NOT NULL,
    -- Why MRR could not be computed (unsupported price shape); mrr_cents is 0 then.
    mrr_error              TEXT,
    quantity               BIGINT,
    current_period_start   TIMESTAMPTZ,
    current_period_end     TIMESTAMPTZ,
    cancel_at_period_end   BOOLEAN NOT NULL DEFAULT false,
    cancel_at              TIMESTAMPTZ,
    canceled_at            TIMESTAMPTZ,
    ended_at               TIMESTAMPTZ,
    trial_end              TIMESTAMPTZ,
    pause_collection       BOOLEAN NOT NULL DEFAULT false,
    default_payment_method TEXT,
    latest_invoice         TEXT,
    created_at             TIMESTAMPTZ,
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at             TIMESTAMPTZ,
    source_created         BIGINT NOT NULL,
    UNIQUE (tenant_id, account_id, stripe_subscription_id)
);
CREATE INDEX stripe_subscriptions_customer ON stripe_subscriptions (tenant_id, account_id, stripe_customer_id);

CREATE TABLE subscription_items (
    tenant_id              TEXT NOT NULL,
    account_id             TEXT NOT NULL,
    stripe_item_id         TEXT NOT NULL,
    stripe_subscription_id TEXT NOT NULL,
    price_id               TEXT NOT NULL,
    product_id             TEXT NOT NULL,
    quantity               BIGINT,
    unit_amount            BIGINT,
    currency               TEXT NOT NULL,
    interval               TEXT,
    interval_count         INTEGER,
    usage_type             TEXT,
    current_period_start   TIMESTAMPTZ,
    current_period_end     TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, account_id, stripe_item_id)
);
CREATE INDEX subscription_items_subscription ON subscription_items (tenant_id, account_id, stripe_subscription_id);

-- Every applied change of a subscription's plan, quantity, status or MRR, with its movement.
CREATE TABLE subscription_changes (
    id                     BIGSERIAL PRIMARY KEY,
    tenant_id              TEXT NOT NULL,
    account_id             TEXT NOT NULL,
    stripe_subscription_id TEXT NOT NULL,
    stripe_customer_id     TEXT NOT NULL,
    changed_at             TIMESTAMPTZ NOT NULL,
    -- `backfill`, `event`, `reconcile` or `refetch`; event id when it came from one.
    source                 TEXT NOT NULL,
    event_id               TEXT,
    movement               TEXT NOT NULL CHECK (movement IN ('new', 'expansion', 'contraction', 'churn', 'reactivation', 'unchanged')),
    status_before          TEXT,
    status_after           TEXT NOT NULL,
    plan_before            TEXT,
    plan_after             TEXT,
    quantity_before        BIGINT,
    quantity_after         BIGINT,
    mrr_before_cents       BIGINT NOT NULL,
    mrr_after_cents        BIGINT NOT NULL,
    currency               TEXT NOT NULL,
    recorded_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX subscription_changes_subscription ON subscription_changes (tenant_id, account_id, stripe_subscription_id, changed_at);
CREATE INDEX subscription_changes_customer ON subscription_changes (tenant_id, account_id, stripe_customer_id, changed_at);

CREATE TABLE stripe_invoices (
    id                     UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id              TEXT NOT NULL,
    account_id             TEXT NOT NULL,
    stripe_customer_id     TEXT NOT NULL,
    stripe_invoice_id      TEXT NOT NULL,
    stripe_subscription_id TEXT,
    number                 TEXT,
    -- amount_cents is the amount due (the PRD's column); the others as Stripe names them.
    amount_cents           BIGINT NOT NULL,
    amount_paid            BIGINT NOT NULL,
    amount_remaining       BIGINT NOT NULL,
    total                  BIGINT NOT NULL,
    currency               TEXT NOT NULL,
    status                 VARCHAR(20),
    billing_reason         TEXT,
    collection_method      TEXT,
    due_date               TIMESTAMPTZ,
    paid_at                TIMESTAMPTZ,
    attempt_count          INTEGER NOT NULL DEFAULT 0,
    next_payment_attempt   TIMESTAMPTZ,
    period_start           TIMESTAMPTZ,
    period_end             TIMESTAMPTZ,
    hosted_invoice_url     TEXT,
    created_at             TIMESTAMPTZ,
    deleted_at             TIMESTAMPTZ,
    source_created         BIGINT NOT NULL,
    synced_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, account_id, stripe_invoice_id)
);
CREATE INDEX stripe_invoices_customer ON stripe_invoices (tenant_id, account_id, stripe_customer_id, created_at DESC);
CREATE INDEX stripe_invoices_open ON stripe_invoices (tenant_id, account_id) WHERE status = 'open';

CREATE TABLE invoice_lines (
    tenant_id              TEXT NOT NULL,
    account_id             TEXT NOT NULL,
    stripe_invoice_id      TEXT NOT NULL,
    line_id                TEXT NOT NULL,
    stripe_subscription_id TEXT,
    price_id               TEXT,
    description            TEXT,
    amount                 BIGINT NOT NULL,
    currency               TEXT NOT NULL,
    quantity               BIGINT,
    period_start           TIMESTAMPTZ,
    period_end             TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, account_id, stripe_invoice_id, line_id)
);

-- One row per charge attempt (success or failure).
CREATE TABLE payment_attempts (
    tenant_id          TEXT NOT NULL,
    account_id         TEXT NOT NULL,
    charge_id          TEXT NOT NULL,
    stripe_customer_id TEXT,
    payment_intent_id  TEXT,
    stripe_invoice_id  TEXT,
    attempted_at       TIMESTAMPTZ NOT NULL,
    amount             BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    outcome            TEXT NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'pending')),
    failure_code       TEXT,
    failure_message    TEXT,
    -- 1-based position among the attempts of the same payment intent.
    attempt_number     INTEGER,
    source_created     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, account_id, charge_id)
);
CREATE INDEX payment_attempts_customer ON payment_attempts (tenant_id, account_id, stripe_customer_id, attempted_at DESC);

-- Card payment methods: brand, last four digits and expiry ONLY. There is deliberately no
-- column able to hold a card number, CVC or token (a test scans this schema).
CREATE TABLE payment_methods (
    tenant_id          TEXT NOT NULL,
    account_id         TEXT NOT NULL,
    payment_method_id  TEXT NOT NULL,
    stripe_customer_id TEXT,
    kind               TEXT NOT NULL,
    card_brand         TEXT,
    card_last4         CHAR(4) CHECK (card_last4 ~ '^[0-9]{4}$'),
    exp_month          SMALLINT CHECK (exp_month BETWEEN 1 AND 12),
    exp_year           SMALLINT,
    detached_at        TIMESTAMPTZ,
    source_created     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, account_id, payment_method_id)
);
CREATE INDEX payment_methods_customer ON payment_methods (tenant_id, account_id, stripe_customer_id);

-- Backfill and reconciliation runs, resumable: `cursors` holds the last id done per list.
CREATE TABLE sync_runs (
    id             UUID PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    account_id     TEXT NOT NULL,
    connection_id  UUID NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('backfill', 'reconcile')),
    status         TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    -- Which list is being walked, and the `starting_after` cursor within it.
    stage          TEXT NOT NULL,
    cursor         TEXT,
    objects_done   BIGINT NOT NULL DEFAULT 0,
    requests       BIGINT NOT NULL DEFAULT 0,
    -- Estimated objects in total (from the previous run, or unknown).
    objects_expected BIGINT,
    attempts       INTEGER NOT NULL DEFAULT 1,
    error          TEXT,
    started_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at    TIMESTAMPTZ
);
CREATE INDEX sync_runs_connection ON sync_runs (connection_id, started_at DESC);
-- At most one running backfill per connection.
CREATE UNIQUE INDEX sync_runs_one_running ON sync_runs (connection_id, kind) WHERE status = 'running';
