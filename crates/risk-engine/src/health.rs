//! Recomputes a CSCX account's billing health from its signals ([`domain::risk::health_score`])
//! and stores it when the score, band or components changed; returns the change to publish.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::sql_types::{BigInt, Jsonb, SmallInt, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use domain::risk::{health_score, without_overlaps, HealthScore, HealthWeights};

use crate::signals;

type Result<T> = std::result::Result<T, diesel::result::Error>;

#[derive(Debug, Clone, QueryableByName)]
struct Stored {
    #[diesel(sql_type = SmallInt)]
    score: i16,
    #[diesel(sql_type = Text)]
    band: String,
    #[diesel(sql_type = Jsonb)]
    components: serde_json::Value,
    #[diesel(sql_type = BigInt)]
    version: i64,
}

/// A stored change of an account's health.
#[derive(Debug, Clone)]
pub struct HealthChange {
    pub account_id: String,
    pub score: HealthScore,
    pub score_before: Option<u8>,
    pub band_before: Option<String>,
    pub version: i64,
    pub computed_at: DateTime<Utc>,
}

/// Oldest resolution that still counts.
pub fn cutoff(now: DateTime<Utc>, weights: &HealthWeights) -> DateTime<Utc> {
    now - TimeDelta::seconds((weights.resolved_cutoff_days * 86_400.0) as i64)
}

/// Recomputes `account`; `None` when nothing a consumer sees changed.
pub async fn recompute(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    account: &str,
    now: DateTime<Utc>,
    weights: &HealthWeights,
) -> Result<Option<HealthChange>> {
    crate::state::lock_account(conn, tenant, account).await?;
    // The subject of a signal is the subscription it is about (dunning is seen from the
    // invoice and from the subscription: one collection, counted once).
    let records = without_overlaps(
        signals::of_account(conn, tenant, account, cutoff(now, weights))
            .await?
            .iter()
            .filter_map(|s| {
                let subject = s.objects.iter().find(|o| o.starts_with("sub_")).cloned();
                s.record().map(|r| (r, subject))
            })
            .collect(),
    );
    let score = health_score(&records, now, weights);
    let components = serde_json::to_value(&score.components).unwrap_or_default();
    let mut held: Vec<Stored> = diesel::sql_query(
        "SELECT score, band, components, version FROM risk.health WHERE tenant_id = $1 AND account_id = $2",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(account)
    .load(conn)
    .await?;
    let held = held.pop();
    // A first score of a clean account is news only when it is not 100: every account starts
    // healthy, nobody needs to hear it.
    if held.is_none() && score.components.is_empty() {
        return Ok(None);
    }
    if let Some(h) = &held {
        if h.score == i16::from(score.score)
            && h.band == score.band.as_str()
            && h.components == components
        {
            return Ok(None);
        }
    }
    let version = held.as_ref().map_or(1, |h| h.version + 1);
    diesel::sql_query(
        "INSERT INTO risk.health (tenant_id, account_id, score, band, components, computed_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, account_id) DO UPDATE SET \
         score = EXCLUDED.score, band = EXCLUDED.band, components = EXCLUDED.components, \
         computed_at = EXCLUDED.computed_at, version = EXCLUDED.version",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(account)
    .bind::<SmallInt, _>(i16::from(score.score))
    .bind::<Text, _>(score.band.as_str())
    .bind::<Jsonb, _>(&components)
    .bind::<Timestamptz, _>(now)
    .bind::<BigInt, _>(version)
    .execute(conn)
    .await?;
    Ok(Some(HealthChange {
        account_id: account.to_owned(),
        score_before: Some(held.as_ref().map_or(100, |h| h.score.clamp(0, 100) as u8)),
        band_before: Some(held.map_or_else(|| "healthy".to_owned(), |h| h.band)),
        score,
        version,
        computed_at: now,
    }))
}
