//! Applies the rules' [`SignalChange`]s to `risk.signals` under the contract of
//! [`domain::risk`]: at most one open signal per (tenant, kind, cause key); a raise updates
//! the open one (only when something changed) or opens a new one; a resolve closes the open
//! one. What changed is collected in an [`Outcome`] for health, alerts and events.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use domain::risk::{CauseKey, Severity, SignalChange, SignalKind, SignalRecord};
use uuid::Uuid;

type Result<T> = std::result::Result<T, diesel::result::Error>;

/// Where the changes come from.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub tenant: &'a str,
    pub stripe_customer_id: &'a str,
    pub stripe_account_id: &'a str,
    /// When Stripe saw the cause.
    pub occurred_at: DateTime<Utc>,
    /// The fact's source (`backfill`, `event`, `reconcile`, `refetch`) or `scan`.
    pub source: &'a str,
    pub now: DateTime<Utc>,
}

impl Origin<'_> {
    /// Raises from a backfill describe old news: stored and scored, not alerted.
    pub fn alerts(&self) -> bool {
        self.source != "backfill"
    }
}

/// A signal as stored.
#[derive(Debug, Clone, QueryableByName)]
pub struct Signal {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub cause_key: String,
    #[diesel(sql_type = Text)]
    pub stripe_customer_id: String,
    #[diesel(sql_type = Text)]
    pub stripe_account_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub account_id: Option<String>,
    #[diesel(sql_type = Text)]
    pub severity: String,
    #[diesel(sql_type = Text)]
    pub summary: String,
    #[diesel(sql_type = Jsonb)]
    pub evidence: serde_json::Value,
    #[diesel(sql_type = Array<Text>)]
    pub objects: Vec<String>,
    #[diesel(sql_type = Timestamptz)]
    pub occurred_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub raised_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub resolved_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub resolution: Option<String>,
}

pub const SIGNAL_COLUMNS: &str =
    "id, kind, cause_key, stripe_customer_id, stripe_account_id, account_id, severity, \
     summary, evidence, objects, occurred_at, raised_at, updated_at, resolved_at, resolution";

impl Signal {
    /// As the pure rules see it (unknown kinds or severities from a newer release are skipped).
    pub fn record(&self) -> Option<SignalRecord> {
        Some(SignalRecord {
            id: self.id.to_string(),
            kind: self.kind.parse().ok()?,
            cause_key: CauseKey::from_stored(self.cause_key.clone()),
            severity: self.severity.parse().ok()?,
            raised_at: self.raised_at,
            resolved_at: self.resolved_at,
        })
    }

    pub fn kind(&self) -> Option<SignalKind> {
        self.kind.parse().ok()
    }

    pub fn severity(&self) -> Option<Severity> {
        self.severity.parse().ok()
    }
}

/// What applying changes did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Opened signals.
    pub opened: Vec<Signal>,
    /// Open signals whose severity, summary, evidence or objects changed.
    pub escalated: Vec<Signal>,
    pub resolved: Vec<Signal>,
    /// Accounts whose health must be recomputed.
    pub accounts: BTreeSet<String>,
}

impl Outcome {
    pub fn is_empty(&self) -> bool {
        self.opened.is_empty() && self.escalated.is_empty() && self.resolved.is_empty()
    }

    pub fn merge(&mut self, other: Outcome) {
        self.opened.extend(other.opened);
        self.escalated.extend(other.escalated);
        self.resolved.extend(other.resolved);
        self.accounts.extend(other.accounts);
    }
}

async fn open_signal(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    kind: SignalKind,
    cause: &CauseKey,
) -> Result<Option<Signal>> {
    let mut rows: Vec<Signal> = diesel::sql_query(format!(
        "SELECT {SIGNAL_COLUMNS} FROM risk.signals \
         WHERE tenant_id = $1 AND kind = $2 AND cause_key = $3 AND resolved_at IS NULL FOR UPDATE"
    ))
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(kind.as_str())
    .bind::<Text, _>(cause.as_str())
    .load(conn)
    .await?;
    Ok(rows.pop())
}

/// Applies `changes` for one customer whose CSCX account is `account` (if linked).
pub async fn apply(
    conn: &mut AsyncPgConnection,
    origin: &Origin<'_>,
    account: Option<&str>,
    changes: &[SignalChange],
) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    for change in changes {
        match change {
            SignalChange::Raise(draft) => {
                let evidence = serde_json::to_value(&draft.evidence).unwrap_or_default();
                let held = open_signal(conn, origin.tenant, draft.kind, &draft.cause_key).await?;
                match held {
                    Some(held) => {
                        let same = held.severity == draft.severity.as_str()
                            && held.summary == draft.summary
                            && held.evidence == evidence
                            && held.objects == draft.objects;
                        if same {
                            continue;
                        }
                        let mut rows: Vec<Signal> = diesel::sql_query(format!(
                            "UPDATE risk.signals SET severity = $2, summary = $3, evidence = $4, objects = $5, \
                             updated_at = $6 WHERE id = $1 RETURNING {SIGNAL_COLUMNS}"
                        ))
                        .bind::<SqlUuid, _>(held.id)
                        .bind::<Text, _>(draft.severity.as_str())
                        .bind::<Text, _>(&draft.summary)
                        .bind::<Jsonb, _>(&evidence)
                        .bind::<Array<Text>, _>(&draft.objects)
                        .bind::<Timestamptz, _>(origin.now)
                        .load(conn)
                        .await?;
                        if let Some(signal) = rows.pop() {
                            outcome.accounts.extend(signal.account_id.clone());
                            outcome.escalated.push(signal);
                        }
                    }
                    None => {
                        let mut rows: Vec<Signal> = diesel::sql_query(format!(
                            "INSERT INTO risk.signals (id, tenant_id, kind, cause_key, stripe_customer_id, stripe_account_id, \
                               account_id, severity, summary, evidence, objects, occurred_at, raised_at, updated_at, source) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14) \
                             RETURNING {SIGNAL_COLUMNS}"
                        ))
                        .bind::<SqlUuid, _>(Uuid::now_v7())
                        .bind::<Text, _>(origin.tenant)
                        .bind::<Text, _>(draft.kind.as_str())
                        .bind::<Text, _>(draft.cause_key.as_str())
                        .bind::<Text, _>(origin.stripe_customer_id)
                        .bind::<Text, _>(origin.stripe_account_id)
                        .bind::<Nullable<Text>, _>(account)
                        .bind::<Text, _>(draft.severity.as_str())
                        .bind::<Text, _>(&draft.summary)
                        .bind::<Jsonb, _>(&evidence)
                        .bind::<Array<Text>, _>(&draft.objects)
                        .bind::<Timestamptz, _>(origin.occurred_at)
                        .bind::<Timestamptz, _>(origin.now)
                        .bind::<Text, _>(origin.source)
                        .load(conn)
                        .await?;
                        if let Some(signal) = rows.pop() {
                            metrics::counter!("risk_signals_raised_total", "kind" => draft.kind.as_str()).increment(1);
                            if origin.source != "backfill" && origin.source != "scan" {
                                let seconds = (origin.now - origin.occurred_at)
                                    .num_milliseconds()
                                    .max(0) as f64
                                    / 1000.0;
                                metrics::histogram!("risk_detection_seconds", "kind" => draft.kind.as_str()).record(seconds);
                            }
                            outcome.accounts.extend(signal.account_id.clone());
                            outcome.opened.push(signal);
                        }
                    }
                }
            }
            SignalChange::Resolve {
                kind,
                cause_key,
                reason,
            } => {
                let mut rows: Vec<Signal> = diesel::sql_query(format!(
                    "UPDATE risk.signals SET resolved_at = $4, updated_at = $4, resolution = $5 \
                     WHERE tenant_id = $1 AND kind = $2 AND cause_key = $3 AND resolved_at IS NULL \
                     RETURNING {SIGNAL_COLUMNS}"
                ))
                .bind::<Text, _>(origin.tenant)
                .bind::<Text, _>(kind.as_str())
                .bind::<Text, _>(cause_key.as_str())
                .bind::<Timestamptz, _>(origin.now)
                .bind::<Text, _>(reason.as_str())
                .load(conn)
                .await?;
                if let Some(signal) = rows.pop() {
                    metrics::counter!("risk_signals_resolved_total", "kind" => kind.as_str())
                        .increment(1);
                    outcome.accounts.extend(signal.account_id.clone());
                    outcome.resolved.push(signal);
                }
            }
        }
    }
    Ok(outcome)
}

/// A customer's signals: open ones, and (with `include_resolved`) every one.
pub async fn of_customer(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    customer: &str,
    include_resolved: bool,
) -> Result<Vec<Signal>> {
    diesel::sql_query(format!(
        "SELECT {SIGNAL_COLUMNS} FROM risk.signals WHERE tenant_id = $1 AND stripe_customer_id = $2 \
         AND ($3 OR resolved_at IS NULL) ORDER BY raised_at"
    ))
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(customer)
    .bind::<diesel::sql_types::Bool, _>(include_resolved)
    .load(conn)
    .await
}

/// An account's open signals and those resolved after `since`, for its health.
pub async fn of_account(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    account: &str,
    since: DateTime<Utc>,
) -> Result<Vec<Signal>> {
    diesel::sql_query(format!(
        "SELECT {SIGNAL_COLUMNS} FROM risk.signals WHERE tenant_id = $1 AND account_id = $2 \
         AND (resolved_at IS NULL OR resolved_at > $3) ORDER BY raised_at"
    ))
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(account)
    .bind::<Timestamptz, _>(since)
    .load(conn)
    .await
}

/// Moves a customer's signals to its new account (open ones and those recent enough to count
/// in health); returns the accounts touched.
pub async fn move_customer(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    customer: &str,
    account: Option<&str>,
    since: DateTime<Utc>,
) -> Result<()> {
    diesel::sql_query(
        "UPDATE risk.signals SET account_id = $3 WHERE tenant_id = $1 AND stripe_customer_id = $2 \
         AND (resolved_at IS NULL OR resolved_at > $4) AND account_id IS DISTINCT FROM $3",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(customer)
    .bind::<Nullable<Text>, _>(account)
    .bind::<Timestamptz, _>(since)
    .execute(conn)
    .await?;
    Ok(())
}
