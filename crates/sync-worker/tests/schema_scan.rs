//! PCI guard: every service's schema, migrated into a fresh database, has no column that could
//! hold a card number, a CVC or a raw token/secret, apart from a short allow-list where each
//! entry says why the column is safe. `billing.payment_methods.card_last4` can hold four
//! digits and nothing else.
//!
//! Adding `card_number`, `cvc`, `access_token`, … anywhere makes this test fail; so does an
//! allow-list entry whose column no longer exists (the list must stay honest).

use std::collections::BTreeSet;

use diesel::sql_types::{Nullable, Text};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use platform::{db, service::ServiceSpec, testing::TestEnv};

/// Column names that could hold card data or credentials, as case-insensitive POSIX regexes
/// (Postgres `~*`), with what they are looking for.
const SUSPICIOUS: &[(&str, &str)] = &[
    (
        "(^|_)(card_?number|number)$|(^|_)(pan|cvc2?|cvv2?|security_code)(_|$)",
        "a card number (PAN) or card verification code",
    ),
    (
        "token|secret|api_?key|password",
        "a raw token, API key or secret",
    ),
    (
        "card",
        "card data (only brand and last four digits may be stored)",
    ),
];

/// `(schema, relation, column, why it is safe)`. Views are listed like tables: a view that
/// exposes a column is another place it can be read from.
const ALLOWED: &[(&str, &str, &str, &str)] = &[
    (
        "billing",
        "stripe_invoices",
        "number",
        "Stripe's invoice number (`ABC123-0001`), printed on the invoice; not a payment credential",
    ),
    (
        "billing",
        "payment_attempts",
        "attempt_number",
        "1-based position of a charge among the attempts of its payment intent",
    ),
    (
        "billing",
        "payment_methods",
        "card_brand",
        "the network's name (`visa`, `amex`)",
    ),
    (
        "billing",
        "payment_methods",
        "card_last4",
        "the last four digits only: CHAR(4) with a four-digit CHECK, asserted below",
    ),
    (
        "billing",
        "invoice_history",
        "number",
        "the invoice number of billing.stripe_invoices through query-api's read model",
    ),
    (
        "billing",
        "payment_attempt_history",
        "attempt_number",
        "the attempt position of billing.payment_attempts through query-api's read model",
    ),
    (
        "billing",
        "customer_profiles",
        "card_brand",
        "the default card's network name (payment_methods.card_brand) through query-api's read model",
    ),
    (
        "billing",
        "customer_profiles",
        "card_last4",
        "payment_methods.card_last4 (four digits, CHECKed) through query-api's read model",
    ),
    (
        "billing",
        "customer_profiles",
        "card_exp_month",
        "the default card's expiry month (1-12), needed for card-expiring signals and the widget",
    ),
    (
        "billing",
        "customer_profiles",
        "card_exp_year",
        "the default card's expiry year, needed for card-expiring signals and the widget",
    ),
    (
        "integration",
        "connections",
        "secret_sealed",
        "AES-256-GCM ciphertext of the key or OAuth token, bound to tenant + connection \
         (platform::crypto::Sealer); useless without the master keys, which live elsewhere",
    ),
    (
        "integration",
        "sync_connections",
        "secret_sealed",
        "the same ciphertext through the sync worker's view",
    ),
    (
        "integration",
        "connections",
        "secret_key_id",
        "the id of the master key that sealed the secret, not key material",
    ),
    (
        "integration",
        "sync_connections",
        "secret_key_id",
        "the same key id through the sync worker's view",
    ),
    (
        "integration",
        "connections",
        "secret_hint",
        "a masked hint (`rk_test_…abcd`): key type and last four characters",
    ),
    (
        "integration",
        "alert_webhooks",
        "secret_sealed",
        "AES-256-GCM ciphertext of the tenant's alert-signing secret, bound to the tenant \
         (platform::crypto::alert_webhook_context)",
    ),
    (
        "integration",
        "alert_webhook_endpoints",
        "secret_sealed",
        "the same ciphertext through the risk engine's view",
    ),
    (
        "integration",
        "alert_webhooks",
        "secret_key_id",
        "the id of the master key that sealed the secret, not key material",
    ),
    (
        "integration",
        "alert_webhook_endpoints",
        "secret_key_id",
        "the same key id through the risk engine's view",
    ),
    (
        "integration",
        "alert_webhooks",
        "secret_hint",
        "a masked hint (`whsec_…abcd`): the last four characters",
    ),
];

/// Every service that owns a schema, so a new schema is scanned without editing this test.
fn services() -> Vec<ServiceSpec> {
    vec![
        sync_worker::spec(),
        query_api::spec(),
        ingress::spec(),
        matcher::spec(),
        risk_engine::spec(),
    ]
}

#[derive(Debug, diesel::QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    table_schema: String,
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

impl Column {
    fn key(&self) -> (String, String, String) {
        (
            self.table_schema.clone(),
            self.table_name.clone(),
            self.column_name.clone(),
        )
    }
}

/// Columns of every non-system schema that match `pattern`.
async fn matching(conn: &mut AsyncPgConnection, pattern: &str) -> Vec<Column> {
    diesel::sql_query(
        "SELECT table_schema::text, table_name::text, column_name::text
         FROM information_schema.columns
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
           AND table_schema NOT LIKE 'pg\\_%'
           AND column_name ~* $1
         ORDER BY 1, 2, 3",
    )
    .bind::<Text, _>(pattern)
    .load(conn)
    .await
    .unwrap()
}

/// Suspicious columns that are not allow-listed, each with the reason it was flagged.
async fn offenders(conn: &mut AsyncPgConnection) -> Vec<String> {
    let allowed: BTreeSet<(String, String, String)> = ALLOWED
        .iter()
        .map(|(s, t, c, _)| (s.to_string(), t.to_string(), c.to_string()))
        .collect();
    let mut found = Vec::new();
    for (pattern, looks_like) in SUSPICIOUS {
        for column in matching(conn, pattern).await {
            if !allowed.contains(&column.key()) {
                found.push(format!(
                    "{}.{}.{} looks like {looks_like}",
                    column.table_schema, column.table_name, column.column_name
                ));
            }
        }
    }
    found
}

async fn migrated_database() -> (TestEnv, AsyncPgConnection) {
    let env = TestEnv::new();
    db::ensure_database(&env.common.database.url).await.unwrap();
    for spec in services() {
        db::migrate(&env.common.database.url, spec.schema, (spec.migrations)())
            .await
            .unwrap_or_else(|e| panic!("migrating {}: {e}", spec.schema));
    }
    let conn = AsyncPgConnection::establish(&env.common.database.url)
        .await
        .unwrap();
    (env, conn)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_column_can_hold_a_card_number_cvc_or_raw_token() {
    let (env, mut conn) = migrated_database().await;

    let schemas: Vec<Column> = diesel::sql_query(
        "SELECT DISTINCT table_schema::text, ''::text AS table_name, ''::text AS column_name
         FROM information_schema.columns ORDER BY 1",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let schemas: BTreeSet<String> = schemas.into_iter().map(|c| c.table_schema).collect();
    for spec in services() {
        assert!(
            schemas.contains(spec.schema),
            "schema {} scanned",
            spec.schema
        );
    }

    let found = offenders(&mut conn).await;
    assert!(
        found.is_empty(),
        "columns that could hold card data or credentials (store brand/last4/expiry only, \
         seal secrets; allow-list a safe column in ALLOWED with the reason):\n  {}",
        found.join("\n  ")
    );

    // Every allow-list entry names a column that exists, or the list only grows stale.
    for (schema, table, column, _) in ALLOWED {
        let exists: Vec<Column> = diesel::sql_query(
            "SELECT table_schema::text, table_name::text, column_name::text
             FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = $2 AND column_name = $3",
        )
        .bind::<Text, _>(schema)
        .bind::<Text, _>(table)
        .bind::<Text, _>(column)
        .load(&mut conn)
        .await
        .unwrap();
        assert_eq!(
            exists.len(),
            1,
            "allow-listed {schema}.{table}.{column} does not exist: remove it from ALLOWED"
        );
    }

    // The scan itself catches what it is for: columns added inside a transaction that is
    // rolled back (DDL is transactional in Postgres and visible to information_schema).
    diesel::sql_query("BEGIN").execute(&mut conn).await.unwrap();
    for ddl in [
        "ALTER TABLE billing.payment_methods ADD COLUMN card_number TEXT",
        "ALTER TABLE billing.payment_methods ADD COLUMN cvc TEXT",
        "ALTER TABLE billing.stripe_customers ADD COLUMN pan TEXT",
        "ALTER TABLE integration.connections ADD COLUMN access_token TEXT",
        "ALTER TABLE billing.stripe_customers ADD COLUMN card_fingerprint TEXT",
    ] {
        diesel::sql_query(ddl).execute(&mut conn).await.unwrap();
    }
    let canaries = offenders(&mut conn).await;
    diesel::sql_query("ROLLBACK")
        .execute(&mut conn)
        .await
        .unwrap();
    let flagged: BTreeSet<&str> = canaries
        .iter()
        .map(|line| line.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        flagged,
        BTreeSet::from([
            "billing.payment_methods.card_number",
            "billing.payment_methods.cvc",
            "billing.stripe_customers.pan",
            "billing.stripe_customers.card_fingerprint",
            "integration.connections.access_token",
        ]),
        "{canaries:?}"
    );

    drop(conn);
    env.cleanup(&[]).await;
}

#[derive(Debug, diesel::QueryableByName)]
struct Shape {
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Nullable<diesel::sql_types::Integer>)]
    character_maximum_length: Option<i32>,
}

#[derive(Debug, diesel::QueryableByName)]
struct Check {
    #[diesel(sql_type = Text)]
    definition: String,
}

#[tokio::test(flavor = "multi_thread")]
async fn card_last4_holds_four_digits_and_nothing_else() {
    let (env, mut conn) = migrated_database().await;

    let shape: Vec<Shape> = diesel::sql_query(
        "SELECT data_type::text, character_maximum_length::int
         FROM information_schema.columns
         WHERE table_schema = 'billing' AND table_name = 'payment_methods'
           AND column_name = 'card_last4'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(shape.len(), 1, "billing.payment_methods.card_last4 exists");
    let shape = &shape[0];
    assert!(
        matches!(shape.data_type.as_str(), "character" | "character varying")
            && shape.character_maximum_length.is_some_and(|n| n <= 4),
        "card_last4 must be bounded to 4 characters, is {shape:?}"
    );

    // A CHECK constraint on exactly this column (conkey = its attribute number).
    let checks: Vec<Check> = diesel::sql_query(
        "SELECT pg_get_constraintdef(c.oid) AS definition
         FROM pg_constraint c
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
         WHERE c.conrelid = 'billing.payment_methods'::regclass
           AND c.contype = 'c'
           AND a.attname = 'card_last4'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert!(
        checks.iter().any(|c| c.definition.contains("{4}")),
        "billing.payment_methods.card_last4 has no CHECK for exactly four digits: {checks:?}"
    );

    // And the constraints do their job: four digits in, anything else out.
    let insert = |last4: &'static str| {
        diesel::sql_query(
            "INSERT INTO billing.payment_methods (tenant_id, account_id, payment_method_id,
                 kind, card_last4, source_created)
             VALUES ('tenant-a', 'acct_1', 'pm_' || md5(random()::text), 'card', $1, 0)",
        )
        .bind::<Text, _>(last4)
    };
    insert("4242").execute(&mut conn).await.unwrap();
    for bad in ["4242424242424242", "424", "42a2", "    "] {
        assert!(
            insert(bad).execute(&mut conn).await.is_err(),
            "card_last4 accepted {bad:?} (checks: {checks:?})"
        );
    }

    drop(conn);
    env.cleanup(&[]).await;
}
