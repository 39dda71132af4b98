//! Which signals a CSM is alerted on.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Severity, SignalKind};

/// Whose accounts a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertScope {
    /// Only accounts the CSM owns (`mine`).
    Mine,
    /// Every account of the tenant (`tenant`).
    Tenant,
}

impl AlertScope {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mine => "mine",
            Self::Tenant => "tenant",
        }
    }
}

impl fmt::Display for AlertScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How alerts of a rule are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestMode {
    /// One alert per signal, as soon as it is raised (`immediate`).
    Immediate,
    /// Collected per UTC hour ([`digest_window`](super::digest_window)) and
    /// delivered once the hour is over (`hourly`).
    Hourly,
}

impl DigestMode {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Immediate => "immediate",
            Self::Hourly => "hourly",
        }
    }
}

impl fmt::Display for DigestMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One CSM's alert rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRule {
    /// The CSCX user alerted.
    pub csm_user_id: String,
    /// Kinds alerted on; empty = every kind.
    pub kinds: Vec<SignalKind>,
    /// Lowest severity alerted on.
    pub min_severity: Severity,
    /// Whose accounts.
    pub scope: AlertScope,
    /// Delivery mode.
    pub digest: DigestMode,
}

/// Whether `rule` alerts on a signal of `kind` at `severity` on an account
/// whose CSM is `account_csm` (none: unassigned).
///
/// The service asks on every raise, new or update: a signal raised at
/// Medium and escalated to Critical matches a Critical-only rule at the
/// escalation. It then delivers at most one alert per signal and CSM,
/// whatever the number of matching rules or raises.
pub fn rule_matches(
    rule: &AlertRule,
    kind: SignalKind,
    severity: Severity,
    account_csm: Option<&str>,
) -> bool {
    let kind_matches = rule.kinds.is_empty() || rule.kinds.contains(&kind);
    let account_matches = match rule.scope {
        AlertScope::Tenant => true,
        AlertScope::Mine => account_csm == Some(rule.csm_user_id.as_str()),
    };
    kind_matches && severity >= rule.min_severity && account_matches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kinds: Vec<SignalKind>, min_severity: Severity, scope: AlertScope) -> AlertRule {
        AlertRule {
            csm_user_id: "u_ana".to_owned(),
            kinds,
            min_severity,
            scope,
            digest: DigestMode::Immediate,
        }
    }

    #[test]
    fn kinds_filter_and_empty_means_all() {
        let payments = rule(
            vec![SignalKind::PaymentFailed],
            Severity::Low,
            AlertScope::Tenant,
        );
        assert!(rule_matches(
            &payments,
            SignalKind::PaymentFailed,
            Severity::Low,
            None
        ));
        assert!(!rule_matches(
            &payments,
            SignalKind::DisputeOpened,
            Severity::Critical,
            None
        ));
        let all = rule(Vec::new(), Severity::Low, AlertScope::Tenant);
        for kind in SignalKind::ALL {
            assert!(rule_matches(&all, kind, Severity::Low, None), "{kind}");
        }
    }

    #[test]
    fn min_severity_is_inclusive() {
        let high = rule(Vec::new(), Severity::High, AlertScope::Tenant);
        let matches: Vec<_> = Severity::ALL
            .into_iter()
            .map(|s| rule_matches(&high, SignalKind::PaymentFailed, s, None))
            .collect();
        assert_eq!(matches, [false, false, true, true]);
    }

    #[test]
    fn mine_needs_the_account_to_be_the_csms() {
        let mine = rule(Vec::new(), Severity::Low, AlertScope::Mine);
        let matches = |csm| rule_matches(&mine, SignalKind::PaymentFailed, Severity::High, csm);
        assert!(matches(Some("u_ana")));
        assert!(!matches(Some("u_bob")));
        assert!(!matches(Some("U_ANA")), "ids compare exactly");
        assert!(!matches(None), "unassigned accounts are nobody's");
        let tenant = rule(Vec::new(), Severity::Low, AlertScope::Tenant);
        assert!(rule_matches(
            &tenant,
            SignalKind::PaymentFailed,
            Severity::Low,
            None
        ));
        assert!(rule_matches(
            &tenant,
            SignalKind::PaymentFailed,
            Severity::Low,
            Some("u_bob")
        ));
    }

    #[test]
    fn all_conditions_must_hold() {
        let strict = rule(
            vec![SignalKind::PaymentFailed, SignalKind::DunningInProgress],
            Severity::Critical,
            AlertScope::Mine,
        );
        assert!(rule_matches(
            &strict,
            SignalKind::DunningInProgress,
            Severity::Critical,
            Some("u_ana")
        ));
        assert!(!rule_matches(
            &strict,
            SignalKind::DunningInProgress,
            Severity::High,
            Some("u_ana")
        ));
        assert!(!rule_matches(
            &strict,
            SignalKind::CardExpired,
            Severity::Critical,
            Some("u_ana")
        ));
        assert!(!rule_matches(
            &strict,
            SignalKind::PaymentFailed,
            Severity::Critical,
            Some("u_bob")
        ));
    }

    #[test]
    fn rules_serialise_with_stable_names() {
        let json = serde_json::to_value(AlertRule {
            digest: DigestMode::Hourly,
            ..rule(
                vec![SignalKind::CardExpiring],
                Severity::Medium,
                AlertScope::Tenant,
            )
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "csm_user_id": "u_ana",
                "kinds": ["card_expiring"],
                "min_severity": "medium",
                "scope": "tenant",
                "digest": "hourly"
            })
        );
        assert_eq!(AlertScope::Mine.to_string(), "mine");
        assert_eq!(DigestMode::Immediate.to_string(), "immediate");
    }
}
