-- A backfill walks its lists concurrently (subscriptions after the catalog they need), so
-- each list keeps its own `starting_after` cursor, committed in the same transaction as the
-- page it follows. `sync_runs.objects_done` and `requests` become running totals refreshed
-- from these rows about once a second; `sync_runs.stage` names the lists not yet done
-- (`done` at the end) and `sync_runs.cursor` is no longer used by backfills.
CREATE TABLE sync_run_cursors (
    run_id        UUID NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    -- products, prices, coupons, customers, subscriptions, invoices, charges
    list          TEXT NOT NULL,
    -- Last id stored: `starting_after` of the next page; NULL = from the start.
    cursor        TEXT,
    done          BOOLEAN NOT NULL DEFAULT false,
    objects_done  BIGINT NOT NULL DEFAULT 0,
    pages         BIGINT NOT NULL DEFAULT 0,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, list)
);

-- Unfinished runs of the one-list-at-a-time walk resume where they stood: lists before
-- their stage are done, the stage's list continues from its cursor.
INSERT INTO sync_run_cursors (run_id, list, cursor, done, objects_done)
SELECT r.id,
       l.list,
       CASE WHEN l.list = r.stage THEN r.cursor END,
       l.ord < s.ord,
       CASE WHEN l.list = r.stage THEN r.objects_done ELSE 0 END
FROM sync_runs r
JOIN (VALUES ('products', 1), ('prices', 2), ('coupons', 3), ('customers', 4),
             ('subscriptions', 5), ('invoices', 6), ('charges', 7), ('done', 8)) AS s (stage, ord)
  ON s.stage = r.stage
CROSS JOIN (VALUES ('products', 1), ('prices', 2), ('coupons', 3), ('customers', 4),
                   ('subscriptions', 5), ('invoices', 6), ('charges', 7)) AS l (list, ord)
WHERE r.kind = 'backfill' AND r.status <> 'succeeded';

-- Renumbering a page's attempts per payment intent looked them up with a scan of the
-- account's attempts: quadratic over a backfill (15 minutes for 10k customers).
CREATE INDEX payment_attempts_intent ON payment_attempts (tenant_id, account_id, payment_intent_id);
