-- The matcher's truth: CSCX accounts, the Stripe customers it has been told about, manual
-- decisions (which always win), and one current link per Stripe customer with its history.
-- One writer (matcher); other services read the views at the end.

-- CSCX accounts as the platform sent them; the newest update wins.
CREATE TABLE accounts (
    tenant_id          TEXT NOT NULL,
    account_id         TEXT NOT NULL,
    name               TEXT NOT NULL,
    -- Registrable domains as the platform listed them (normalised again when indexed).
    domains            TEXT[] NOT NULL DEFAULT '{}',
    external_ids       TEXT[] NOT NULL DEFAULT '{}',
    csm_user_id        TEXT,
    -- `updated_at_ms` / `deleted_at_ms` of the newest message applied.
    source_updated_ms  BIGINT NOT NULL,
    deleted_at         TIMESTAMPTZ,
    received_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, account_id)
);

-- Bumped on every account change, so a replica's cached index of a tenant's accounts knows
-- it is stale.
CREATE TABLE tenants (
    tenant_id        TEXT PRIMARY KEY,
    accounts_version BIGINT NOT NULL DEFAULT 0
);

-- Stripe customers as the sync worker described them (`customer.upserted` facts).
CREATE TABLE customers (
    tenant_id          TEXT NOT NULL,
    stripe_customer_id TEXT NOT NULL,
    stripe_account_id  TEXT NOT NULL,
    email              TEXT,
    name               TEXT,
    metadata           JSONB NOT NULL DEFAULT '{}',
    deleted            BOOLEAN NOT NULL DEFAULT false,
    -- When the state was true at Stripe (the fact's occurred_at): newer-only.
    source_occurred_at BIGINT NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, stripe_customer_id)
);

-- A person's decisions about a customer. They outlive re-syncs and re-matching; CLEAR removes
-- the row. At most one of pinned_account_id / pinned_none.
CREATE TABLE manual_decisions (
    tenant_id            TEXT NOT NULL,
    stripe_customer_id   TEXT NOT NULL,
    -- SET or CONFIRM: the customer belongs to this account.
    pinned_account_id    TEXT,
    -- REJECT without an account: the customer belongs to no account (a reseller, a test).
    pinned_none          BOOLEAN NOT NULL DEFAULT false,
    -- REJECT of an account: the rules must never link the customer to these.
    excluded_account_ids TEXT[] NOT NULL DEFAULT '{}',
    decided_by           TEXT NOT NULL,
    note                 TEXT,
    decided_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, stripe_customer_id),
    CHECK (NOT (pinned_none AND pinned_account_id IS NOT NULL))
);

-- Every manual request as received, applied or not (audit).
CREATE TABLE decision_log (
    id                 BIGSERIAL PRIMARY KEY,
    tenant_id          TEXT NOT NULL,
    request_id         TEXT NOT NULL,
    stripe_customer_id TEXT NOT NULL,
    action             TEXT NOT NULL,
    account_id         TEXT,
    actor              TEXT NOT NULL,
    note               TEXT,
    outcome            TEXT NOT NULL,
    at                 TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX decision_log_customer ON decision_log (tenant_id, stripe_customer_id, at DESC);

-- The current decision per Stripe customer.
CREATE TABLE links (
    tenant_id          TEXT NOT NULL,
    stripe_customer_id TEXT NOT NULL,
    stripe_account_id  TEXT NOT NULL,
    account_id         TEXT,
    status             TEXT NOT NULL
        CHECK (status IN ('linked', 'manual', 'ambiguous', 'unmatched', 'rejected', 'deleted')),
    method             TEXT CHECK (method IN ('metadata_id', 'email_domain', 'company_name', 'manual')),
    confidence         DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (confidence >= 0 AND confidence <= 1),
    evidence           JSONB NOT NULL DEFAULT '[]',
    -- Ambiguous: the accounts in contention with their scores.
    candidates         JSONB NOT NULL DEFAULT '[]',
    -- Unmatched / ambiguous: what the rules saw.
    reason             TEXT,
    csm_user_id        TEXT,
    decided_by         TEXT NOT NULL,
    decided_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    version            BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, stripe_customer_id),
    CHECK ((account_id IS NOT NULL) = (status IN ('linked', 'manual')))
);
CREATE INDEX links_account ON links (tenant_id, account_id) WHERE account_id IS NOT NULL;
CREATE INDEX links_review ON links (tenant_id, status) WHERE status IN ('ambiguous', 'unmatched');

-- Every link change (why did this customer move?).
CREATE TABLE link_history (
    id                 BIGSERIAL PRIMARY KEY,
    tenant_id          TEXT NOT NULL,
    stripe_customer_id TEXT NOT NULL,
    account_id_before  TEXT,
    account_id_after   TEXT,
    status             TEXT NOT NULL,
    method             TEXT,
    confidence         DOUBLE PRECISION NOT NULL,
    evidence           JSONB NOT NULL,
    decided_by         TEXT NOT NULL,
    version            BIGINT NOT NULL,
    at                 TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX link_history_customer ON link_history (tenant_id, stripe_customer_id, version DESC);

-- Work for the re-matcher, written in the same transaction as the change that causes it.
-- stripe_customer_id '' = every customer of the tenant (an account changed).
CREATE TABLE pending (
    tenant_id          TEXT NOT NULL,
    stripe_customer_id TEXT NOT NULL,
    requested_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, stripe_customer_id)
);

-- Link changes for the `matching` exchange (platform::outbox).
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

-- Read models for other services (query-api): never the tables.
CREATE VIEW matching.customer_links AS
SELECT l.tenant_id, l.stripe_customer_id, l.stripe_account_id, l.account_id, l.status, l.method,
       l.confidence, l.evidence, l.candidates, l.reason, l.csm_user_id, l.decided_by,
       l.decided_at, l.version, c.email, c.name AS customer_name
FROM matching.links l
LEFT JOIN matching.customers c USING (tenant_id, stripe_customer_id);

CREATE VIEW matching.cscx_accounts AS
SELECT tenant_id, account_id, name, domains, external_ids, csm_user_id, received_at AS updated_at
FROM matching.accounts
WHERE deleted_at IS NULL;

CREATE VIEW matching.manual_decision_log AS
SELECT tenant_id, request_id, stripe_customer_id, action, account_id, actor, note, outcome, at
FROM matching.decision_log;
