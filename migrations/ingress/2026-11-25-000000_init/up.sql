-- The ingress schema: verified Stripe events, stored once, and the outbox state of each.
CREATE TABLE inbox (
    consumer     TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

CREATE TABLE events (
    id           BIGSERIAL PRIMARY KEY,
    -- Stripe's event id (evt_…), unique: a redelivered event is stored once.
    event_id     TEXT NOT NULL UNIQUE,
    tenant_id    TEXT,
    endpoint     TEXT NOT NULL,
    account      TEXT,
    event_type   TEXT NOT NULL,
    created      TIMESTAMPTZ NOT NULL,
    livemode     BOOLEAN NOT NULL,
    api_version  TEXT,
    -- The verified body exactly as Stripe sent it (not JSONB, which would re-serialise it).
    payload      TEXT NOT NULL,
    -- Trace context of the HTTP request, continued by the outbox relay into the message.
    traceparent  TEXT,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);

-- The outbox relay reads unpublished events in arrival order.
CREATE INDEX events_unpublished ON events (id) WHERE published_at IS NULL;
