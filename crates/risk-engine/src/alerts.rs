//! CSM alert rules and the alerts they produce: on every raise (new or escalated), each CSM
//! with a matching rule ([`domain::risk::rule_matches`]) gets one alert per signal — the
//! `(signal_id, csm_user_id)` unique key makes a second one impossible, whatever the number
//! of rules, raises or redeliveries.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use domain::risk::{rule_matches, AlertRule, AlertScope, DigestMode, SignalKind};
use uuid::Uuid;

use crate::signals::Signal;

type Result<T> = std::result::Result<T, diesel::result::Error>;

#[derive(Debug, Clone, QueryableByName)]
struct StoredRule {
    #[diesel(sql_type = Text)]
    rule_id: String,
    #[diesel(sql_type = Text)]
    csm_user_id: String,
    #[diesel(sql_type = Array<Text>)]
    kinds: Vec<String>,
    #[diesel(sql_type = Text)]
    min_severity: String,
    #[diesel(sql_type = Text)]
    scope: String,
    #[diesel(sql_type = Text)]
    delivery: String,
}

pub fn parse_scope(s: &str) -> Option<AlertScope> {
    [AlertScope::Mine, AlertScope::Tenant]
        .into_iter()
        .find(|v| v.as_str() == s)
}

pub fn parse_delivery(s: &str) -> Option<DigestMode> {
    [DigestMode::Immediate, DigestMode::Hourly]
        .into_iter()
        .find(|v| v.as_str() == s)
}

impl StoredRule {
    fn rule(&self) -> Option<AlertRule> {
        Some(AlertRule {
            csm_user_id: self.csm_user_id.clone(),
            kinds: self
                .kinds
                .iter()
                .map(|k| k.parse::<SignalKind>())
                .collect::<std::result::Result<_, _>>()
                .ok()?,
            min_severity: self.min_severity.parse().ok()?,
            scope: parse_scope(&self.scope)?,
            digest: parse_delivery(&self.delivery)?,
        })
    }
}

/// One alert to publish.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub id: Uuid,
    pub rule_id: String,
    pub csm_user_id: String,
    pub digest: bool,
    pub created_at: DateTime<Utc>,
}

/// The tenant's alert rules with their ids, read once per message (an unreadable rule, from
/// a newer release, is skipped with a warning).
pub async fn rules(conn: &mut AsyncPgConnection, tenant: &str) -> Result<Vec<(String, AlertRule)>> {
    let stored: Vec<StoredRule> = diesel::sql_query(
        "SELECT rule_id, csm_user_id, kinds, min_severity, scope, delivery FROM risk.alert_rules \
         WHERE tenant_id = $1 ORDER BY rule_id",
    )
    .bind::<Text, _>(tenant)
    .load(conn)
    .await?;
    Ok(stored
        .into_iter()
        .filter_map(|s| match s.rule() {
            Some(rule) => Some((s.rule_id, rule)),
            None => {
                tracing::warn!(tenant, rule = %s.rule_id, "alert rule unreadable; skipped");
                None
            }
        })
        .collect())
}

/// Creates the alerts `signal` calls for on an account owned by `account_csm`.
pub async fn for_signal(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    rules: &[(String, AlertRule)],
    signal: &Signal,
    account_csm: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<NewAlert>> {
    let (Some(kind), Some(severity)) = (signal.kind(), signal.severity()) else {
        return Ok(Vec::new());
    };
    let mut created = Vec::new();
    for (rule_id, rule) in rules {
        if !rule_matches(rule, kind, severity, account_csm) {
            continue;
        }
        let id = Uuid::now_v7();
        let inserted = diesel::sql_query(
            "INSERT INTO risk.alerts (id, tenant_id, signal_id, csm_user_id, rule_id, delivery, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (signal_id, csm_user_id) DO NOTHING",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<Text, _>(tenant)
        .bind::<SqlUuid, _>(signal.id)
        .bind::<Text, _>(&rule.csm_user_id)
        .bind::<Text, _>(rule_id)
        .bind::<Text, _>(rule.digest.as_str())
        .bind::<Timestamptz, _>(now)
        .execute(conn)
        .await?;
        if inserted == 1 {
            // Delivered to the tenant's webhook: at once, or at the end of the CSM's digest hour.
            let due = match rule.digest {
                DigestMode::Immediate => now,
                DigestMode::Hourly => domain::risk::digest_window(now).end,
            };
            diesel::sql_query(
                "INSERT INTO risk.alert_deliveries (alert_id, tenant_id, csm_user_id, digest, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind::<SqlUuid, _>(id)
            .bind::<Text, _>(tenant)
            .bind::<Text, _>(&rule.csm_user_id)
            .bind::<diesel::sql_types::Bool, _>(rule.digest == DigestMode::Hourly)
            .bind::<Timestamptz, _>(due)
            .execute(conn)
            .await?;
            metrics::counter!("risk_alerts_created_total", "kind" => kind.as_str()).increment(1);
            created.push(NewAlert {
                id,
                rule_id: rule_id.clone(),
                csm_user_id: rule.csm_user_id.clone(),
                digest: rule.digest == DigestMode::Hourly,
                created_at: now,
            });
        }
    }
    Ok(created)
}

/// Stores (or deletes) a rule from an `AlertRuleRequested`.
pub async fn save_rule(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    rule_id: &str,
    rule: Option<(&AlertRule, &str)>,
) -> Result<()> {
    match rule {
        None => {
            diesel::sql_query("DELETE FROM risk.alert_rules WHERE tenant_id = $1 AND rule_id = $2")
                .bind::<Text, _>(tenant)
                .bind::<Text, _>(rule_id)
                .execute(conn)
                .await?;
        }
        Some((rule, actor)) => {
            let kinds: Vec<&str> = rule.kinds.iter().map(|k| k.as_str()).collect();
            diesel::sql_query(
                "INSERT INTO risk.alert_rules (tenant_id, rule_id, csm_user_id, kinds, min_severity, scope, delivery, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, rule_id) DO UPDATE SET \
                 csm_user_id = EXCLUDED.csm_user_id, kinds = EXCLUDED.kinds, min_severity = EXCLUDED.min_severity, \
                 scope = EXCLUDED.scope, delivery = EXCLUDED.delivery, created_by = EXCLUDED.created_by, updated_at = now()",
            )
            .bind::<Text, _>(tenant)
            .bind::<Text, _>(rule_id)
            .bind::<Text, _>(&rule.csm_user_id)
            .bind::<Array<Text>, _>(&kinds)
            .bind::<Text, _>(rule.min_severity.as_str())
            .bind::<Text, _>(rule.scope.as_str())
            .bind::<Text, _>(rule.digest.as_str())
            .bind::<Text, _>(actor)
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}
