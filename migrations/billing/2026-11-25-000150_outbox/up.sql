-- Facts for the `billing` exchange, written in the transaction of the change they describe
-- and published by the relay with confirms (platform::outbox).
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
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
