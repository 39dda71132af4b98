// Backfill comparison (issue #10): Supabase's Stripe sync engine (npm
// @supabase/stripe-sync-engine) against our Stripe fake, and the same correctness checks
// on both tools' tables. Driven by scripts/sync-compare/run.sh; see docs/benchmarks.md.
//
//   node compare.mjs backfill <database-url>     run their backfill into schema "stripe"
//   node compare.mjs check theirs <database-url> check their tables against the truth
//   node compare.mjs check ours <database-url>   check our billing tables against the truth
//
// Env: STRIPE_FAKE_URL (http://127.0.0.1:PORT/), TRUTH (the fake's /_admin/truth as a file).

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import pg from "pg";

const API_VERSION = "2025-03-31.basil";
const fakeUrl = new URL(process.env.STRIPE_FAKE_URL ?? "http://127.0.0.1:12111/");

async function backfill(databaseUrl) {
  // The package's CommonJS build: its ES module build refers to __dirname (undefined in
  // ES modules) when it looks for its migrations.
  const require = createRequire(import.meta.url);
  const { StripeSync, runMigrations } = require("@supabase/stripe-sync-engine");
  const Stripe = require("stripe");
  const logger = { info() {}, debug() {}, warn: console.warn, error: (e, m) => console.error(m ?? "", e) };
  await runMigrations({ databaseUrl, schema: "stripe", logger });
  const sync = new StripeSync({
    poolConfig: { connectionString: databaseUrl, max: 10 },
    stripeSecretKey: "rk_test_fake",
    stripeWebhookSecret: "whsec_unused",
    stripeApiVersion: API_VERSION,
    backfillRelatedEntities: false,
  });
  // The engine builds its Stripe client with Stripe's host; the official SDK's own
  // options point it at the fake instead (the engine's code is unchanged).
  sync.stripe = new Stripe("rk_test_fake", {
    apiVersion: API_VERSION,
    host: fakeUrl.hostname,
    port: Number(fakeUrl.port),
    protocol: fakeUrl.protocol.replace(":", ""),
    maxNetworkRetries: 10,
  });
  let requests = 0;
  let throttled = 0;
  sync.stripe.on("response", (r) => {
    requests += 1;
    if (r.status === 429) throttled += 1;
  });
  // Every object both tools keep; the engine's "all" also lists endpoints the fake (and our
  // product) has no use for: setup intents, tax ids, credit notes, refunds, checkout sessions.
  const objects = ["product", "price", "customer", "subscription", "invoice", "charge", "payment_intent", "payment_method", "dispute"];
  const started = performance.now();
  const synced = {};
  let failure = null;
  for (const object of objects) {
    const t = performance.now();
    try {
      const result = await sync.syncBackfill({ object });
      const counts = Object.values(result).filter(Boolean).map((s) => s.synced);
      synced[object] = { synced: counts.reduce((a, b) => a + b, 0), seconds: ((performance.now() - t) / 1000).toFixed(1) };
    } catch (e) {
      // The SDK does not retry 429s (by Stripe's design), and the engine has no pacing
      // of its own: one throttled call ends the backfill.
      failure = `${object}: ${e.type ?? e.name} ${e.statusCode ?? ""} ${e.message}`;
      break;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  await sync.postgresClient.pool.end();
  if (failure) {
    console.log(`theirs: backfill FAILED after ${seconds.toFixed(1)} s and ${requests} requests (${throttled} answered 429): ${failure}`);
  } else {
    console.log(`theirs: backfill in ${seconds.toFixed(1)} s, ${requests} requests (${throttled} answered 429)`);
  }
  for (const [object, s] of Object.entries(synced)) console.log(`  ${object}: ${s.synced} in ${s.seconds} s`);
  console.log(`RESULT sync_engine_completed ${failure ? 0 : 1}`);
  console.log(`RESULT sync_engine_backfill_s ${seconds.toFixed(2)}`);
  console.log(`RESULT sync_engine_requests ${requests}`);
}

// Where each tool keeps what the checks read.
const TABLES = {
  theirs: {
    customers: `SELECT id FROM stripe.customers WHERE coalesce(deleted, false) = false`,
    subscriptions: `SELECT id, status::text AS status FROM stripe.subscriptions`,
    invoices: `SELECT status::text AS status, count(*)::int AS n FROM stripe.invoices GROUP BY 1`,
    charges: `SELECT status::text AS status, count(*)::int AS n FROM stripe.charges GROUP BY 1`,
    cards: `SELECT id, (card->>'exp_month')::int AS exp_month, (card->>'exp_year')::int AS exp_year FROM stripe.payment_methods`,
    mrr: null,
  },
  ours: {
    customers: `SELECT stripe_customer_id AS id FROM billing.stripe_customers WHERE deleted_at IS NULL`,
    subscriptions: `SELECT stripe_subscription_id AS id, status FROM billing.stripe_subscriptions WHERE deleted_at IS NULL`,
    invoices: `SELECT status, count(*)::int AS n FROM billing.stripe_invoices WHERE deleted_at IS NULL GROUP BY 1`,
    charges: `SELECT outcome AS status, count(*)::int AS n FROM billing.payment_attempts GROUP BY 1`,
    cards: `SELECT payment_method_id AS id, exp_month::int AS exp_month, exp_year::int AS exp_year FROM billing.payment_methods WHERE detached_at IS NULL`,
    mrr: `SELECT stripe_customer_id AS id, currency, sum(mrr_cents)::bigint AS mrr FROM billing.stripe_subscriptions WHERE deleted_at IS NULL GROUP BY 1, 2`,
  },
};

async function check(tool, databaseUrl) {
  const truth = JSON.parse(readFileSync(process.env.TRUTH, "utf8"));
  const customers = truth.customers.filter((c) => c.account === truth.platform_account);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const q = async (sql) => (await client.query(sql)).rows;
  const tables = TABLES[tool];
  const results = [];
  const record = (name, ok, detail) => results.push({ name, ok, detail });

  const held = new Set((await q(tables.customers)).map((r) => r.id));
  const missing = customers.filter((c) => !held.has(c.customer)).length;
  record("customers", missing === 0 && held.size === customers.length, `${held.size} held of ${customers.length}, ${missing} missing`);

  const subs = new Map((await q(tables.subscriptions)).map((r) => [r.id, r.status]));
  const want = customers.flatMap((c) => c.subscriptions);
  const wrong = want.filter((s) => subs.get(s.id) !== s.status).length;
  record("subscriptions and status", wrong === 0, `${want.length - wrong} of ${want.length} right`);

  const invoices = Object.fromEntries((await q(tables.invoices)).map((r) => [r.status, r.n]));
  const wantInvoices = {};
  for (const c of customers) for (const [s, n] of Object.entries(c.invoice_counts)) wantInvoices[s] = (wantInvoices[s] ?? 0) + n;
  const invoicesOk = Object.entries(wantInvoices).every(([s, n]) => invoices[s] === n);
  record("invoices by status", invoicesOk, `held ${JSON.stringify(invoices)}, Stripe ${JSON.stringify(wantInvoices)}`);

  const charges = Object.fromEntries((await q(tables.charges)).map((r) => [r.status, r.n]));
  const failed = customers.reduce((a, c) => a + c.failed_payment_attempts, 0);
  const total = Object.values(charges).reduce((a, b) => a + b, 0);
  record("charges, failed ones", total === truth.totals.charges && (charges.failed ?? 0) === failed, `${total} held (${charges.failed ?? 0} failed), Stripe ${truth.totals.charges} (${failed} failed)`);

  const cards = new Map((await q(tables.cards)).map((r) => [r.id, r]));
  const defaults = customers.flatMap((c) => c.cards.filter((k) => k.is_default));
  const cardsRight = defaults.filter((k) => cards.get(k.payment_method)?.exp_month === k.exp_month && cards.get(k.payment_method)?.exp_year === k.exp_year).length;
  record("default card expiry", cardsRight === defaults.length, `${cardsRight} of ${defaults.length}`);

  if (tables.mrr) {
    const mrr = new Map();
    for (const r of await q(tables.mrr)) mrr.set(`${r.id}/${r.currency}`, Number(r.mrr));
    const wantMrr = customers.flatMap((c) => Object.entries(c.mrr).map(([cur, v]) => [`${c.customer}/${cur}`, v]));
    const right = wantMrr.filter(([k, v]) => (mrr.get(k) ?? 0) === v).length;
    record("MRR per customer and currency", right === wantMrr.length, `${right} of ${wantMrr.length}`);
  } else {
    record("MRR per customer and currency", false, "not computed by this tool (raw Stripe objects only)");
  }
  await client.end();

  for (const r of results) console.log(`${tool}: ${r.ok ? "ok  " : "FAIL"} ${r.name}: ${r.detail}`);
  console.log(`RESULT ${tool === "ours" ? "backfill" : "sync_engine"}_checks_passed ${results.filter((r) => r.ok).length}`);
  console.log(`RESULT ${tool === "ours" ? "backfill" : "sync_engine"}_checks_total ${results.length}`);
}

const [command, a, b] = process.argv.slice(2);
if (command === "backfill") await backfill(a);
else if (command === "check") await check(a, b);
else {
  console.error("usage: compare.mjs backfill <db-url> | check theirs|ours <db-url>");
  process.exit(2);
}
