//! Revenue at risk: the MRR of accounts with an open payment signal.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::matching::AccountId;
use crate::money::{MoneyByCurrency, MoneyError};

use super::SignalKind;

/// One account as the service sees it: its MRR and its open signal kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRisk {
    /// The CSCX account.
    pub account_id: AccountId,
    /// Its CSM, if assigned.
    pub csm_user_id: Option<String>,
    /// Its MRR per currency (every linked Stripe customer).
    pub mrr: MoneyByCurrency,
    /// Kinds of its open signals (any; non-payment kinds are ignored).
    pub open_signal_kinds: Vec<SignalKind>,
}

/// An account behind the revenue at risk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountAtRisk {
    /// The account.
    pub account_id: AccountId,
    /// Its CSM.
    pub csm_user_id: Option<String>,
    /// Its MRR, all of which is at risk.
    pub mrr: MoneyByCurrency,
    /// Its open payment signal kinds, in [`SignalKind::ALL`] order.
    pub payment_signal_kinds: Vec<SignalKind>,
}

/// Revenue at risk of one CSM's accounts (or of unassigned accounts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CsmRevenueAtRisk {
    /// The CSM; none for accounts without one.
    pub csm_user_id: Option<String>,
    /// MRR at risk per currency.
    pub mrr: MoneyByCurrency,
    /// How many accounts.
    pub accounts: usize,
}

/// A tenant's revenue at risk, with the accounts behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevenueAtRisk {
    /// MRR at risk per currency (never converted).
    pub total: MoneyByCurrency,
    /// Per CSM, unassigned accounts first, then by CSM id.
    pub by_csm: Vec<CsmRevenueAtRisk>,
    /// The accounts, by account id. Accounts with a payment signal but no
    /// MRR (a one-off invoice) are listed with an empty MRR.
    pub accounts: Vec<AccountAtRisk>,
}

/// Sums the MRR of the accounts with at least one open payment signal
/// ([`SignalKind::is_payment`]). Entries with the same account id are merged
/// (MRR summed, kinds united; the CSM is the smallest id given), so the
/// service may pass one entry per linked Stripe customer. Order-independent.
/// Fails only when a total overflows.
pub fn revenue_at_risk(accounts: &[AccountRisk]) -> Result<RevenueAtRisk, MoneyError> {
    let mut merged: BTreeMap<&AccountId, (Option<&String>, MoneyByCurrency, BTreeSet<SignalKind>)> =
        BTreeMap::new();
    for account in accounts {
        let kinds: BTreeSet<SignalKind> = account
            .open_signal_kinds
            .iter()
            .copied()
            .filter(|kind| kind.is_payment())
            .collect();
        let entry = merged
            .entry(&account.account_id)
            .or_insert_with(|| (None, MoneyByCurrency::new(), BTreeSet::new()));
        entry.0 = match (entry.0, account.csm_user_id.as_ref()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        entry.1.add_all(&account.mrr)?;
        entry.2.extend(kinds);
    }

    let mut result = RevenueAtRisk::default();
    let mut by_csm: BTreeMap<Option<&String>, (MoneyByCurrency, usize)> = BTreeMap::new();
    for (account_id, (csm, mrr, kinds)) in merged {
        if kinds.is_empty() {
            continue;
        }
        result.total.add_all(&mrr)?;
        let csm_total = by_csm.entry(csm).or_default();
        csm_total.0.add_all(&mrr)?;
        csm_total.1 += 1;
        result.accounts.push(AccountAtRisk {
            account_id: account_id.clone(),
            csm_user_id: csm.cloned(),
            mrr,
            payment_signal_kinds: kinds.into_iter().collect(),
        });
    }
    result.by_csm = by_csm
        .into_iter()
        .map(|(csm, (mrr, accounts))| CsmRevenueAtRisk {
            csm_user_id: csm.cloned(),
            mrr,
            accounts,
        })
        .collect();
    Ok(result)
}

#[cfg(test)]
mod tests {
    use crate::money::{Currency, Money};

    use super::*;

    fn account(id: &str, csm: Option<&str>, mrr: &[Money], kinds: &[SignalKind]) -> AccountRisk {
        AccountRisk {
            account_id: AccountId::new(id),
            csm_user_id: csm.map(str::to_owned),
            mrr: MoneyByCurrency::try_sum(mrr.iter().copied()).unwrap(),
            open_signal_kinds: kinds.to_vec(),
        }
    }

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::USD)
    }

    #[test]
    fn only_accounts_with_open_payment_signals_count() {
        let accounts = [
            account(
                "acc_a",
                Some("u_ana"),
                &[usd(100_000)],
                &[SignalKind::PaymentFailed],
            ),
            account(
                "acc_b",
                Some("u_ana"),
                &[usd(50_000)],
                &[SignalKind::CardExpiring],
            ),
            account(
                "acc_c",
                Some("u_bob"),
                &[usd(20_000)],
                &[SignalKind::CancellationRequested],
            ),
            account("acc_d", Some("u_bob"), &[usd(30_000)], &[]),
            account(
                "acc_e",
                Some("u_bob"),
                &[usd(7_000)],
                &[SignalKind::DisputeOpened, SignalKind::SubscriptionDowngrade],
            ),
        ];
        let risk = revenue_at_risk(&accounts).unwrap();
        assert_eq!(risk.total.get(Currency::USD), usd(107_000));
        let ids: Vec<_> = risk
            .accounts
            .iter()
            .map(|a| a.account_id.as_str())
            .collect();
        assert_eq!(ids, ["acc_a", "acc_e"]);
        assert_eq!(
            risk.accounts[1].payment_signal_kinds,
            [SignalKind::DisputeOpened]
        );
        assert_eq!(
            risk.by_csm,
            [
                CsmRevenueAtRisk {
                    csm_user_id: Some("u_ana".to_owned()),
                    mrr: MoneyByCurrency::try_sum([usd(100_000)]).unwrap(),
                    accounts: 1
                },
                CsmRevenueAtRisk {
                    csm_user_id: Some("u_bob".to_owned()),
                    mrr: MoneyByCurrency::try_sum([usd(7_000)]).unwrap(),
                    accounts: 1
                },
            ]
        );
    }

    #[test]
    fn every_payment_kind_puts_revenue_at_risk() {
        for kind in SignalKind::ALL {
            let risk = revenue_at_risk(&[account("acc", None, &[usd(1)], &[kind])]).unwrap();
            assert_eq!(risk.accounts.len() == 1, kind.is_payment(), "{kind}");
        }
    }

    #[test]
    fn currencies_are_kept_apart() {
        let accounts = [
            account(
                "acc_a",
                Some("u_ana"),
                &[usd(100_000), Money::new(5_000, Currency::EUR)],
                &[SignalKind::DunningInProgress],
            ),
            account(
                "acc_b",
                Some("u_ana"),
                &[Money::new(300_000, Currency::JPY)],
                &[SignalKind::CardExpired],
            ),
        ];
        let risk = revenue_at_risk(&accounts).unwrap();
        assert_eq!(risk.total.len(), 3);
        assert_eq!(
            risk.total.get(Currency::JPY),
            Money::new(300_000, Currency::JPY)
        );
        assert_eq!(
            risk.total.get(Currency::EUR),
            Money::new(5_000, Currency::EUR)
        );
        assert_eq!(risk.by_csm[0].mrr, risk.total);
        assert_eq!(risk.by_csm[0].accounts, 2);
        assert_eq!(
            serde_json::to_value(&risk.total).unwrap(),
            serde_json::json!({"eur":5000,"jpy":300000,"usd":100000})
        );
    }

    #[test]
    fn unassigned_accounts_are_grouped_first() {
        let accounts = [
            account(
                "acc_a",
                Some("u_zed"),
                &[usd(1)],
                &[SignalKind::PaymentFailed],
            ),
            account("acc_b", None, &[usd(2)], &[SignalKind::PaymentFailed]),
        ];
        let risk = revenue_at_risk(&accounts).unwrap();
        let csms: Vec<_> = risk
            .by_csm
            .iter()
            .map(|c| c.csm_user_id.as_deref())
            .collect();
        assert_eq!(csms, [None, Some("u_zed")]);
    }

    #[test]
    fn entries_of_one_account_are_merged_order_independently() {
        let parts = [
            account(
                "acc_a",
                Some("u_bob"),
                &[usd(10_000)],
                &[SignalKind::CardExpiring],
            ),
            account("acc_a", None, &[usd(5_000)], &[SignalKind::PaymentFailed]),
            account(
                "acc_a",
                Some("u_ana"),
                &[usd(1_000)],
                &[SignalKind::PaymentFailed, SignalKind::InvoiceUncollectible],
            ),
        ];
        let forward = revenue_at_risk(&parts).unwrap();
        let mut reversed = parts.to_vec();
        reversed.reverse();
        assert_eq!(revenue_at_risk(&reversed).unwrap(), forward);
        assert_eq!(forward.accounts.len(), 1);
        let merged = &forward.accounts[0];
        assert_eq!(
            merged.mrr.get(Currency::USD),
            usd(16_000),
            "all customers' MRR"
        );
        assert_eq!(merged.csm_user_id.as_deref(), Some("u_ana"));
        assert_eq!(
            merged.payment_signal_kinds,
            [SignalKind::PaymentFailed, SignalKind::InvoiceUncollectible]
        );
    }

    #[test]
    fn an_account_without_mrr_is_listed_and_adds_nothing() {
        let risk =
            revenue_at_risk(&[account("acc_a", None, &[], &[SignalKind::PaymentFailed])]).unwrap();
        assert_eq!(risk.accounts.len(), 1);
        assert!(risk.accounts[0].mrr.is_empty());
        assert!(risk.total.is_empty());
        assert_eq!(risk.by_csm[0].accounts, 1);
    }

    #[test]
    fn nothing_at_risk() {
        assert_eq!(revenue_at_risk(&[]).unwrap(), RevenueAtRisk::default());
        let healthy = [account("acc_a", Some("u_ana"), &[usd(100)], &[])];
        let risk = revenue_at_risk(&healthy).unwrap();
        assert!(risk.total.is_empty() && risk.by_csm.is_empty() && risk.accounts.is_empty());
    }

    #[test]
    fn overflow_is_an_error() {
        let accounts = [
            account(
                "acc_a",
                None,
                &[usd(i64::MAX)],
                &[SignalKind::PaymentFailed],
            ),
            account("acc_b", None, &[usd(1)], &[SignalKind::PaymentFailed]),
        ];
        assert_eq!(
            revenue_at_risk(&accounts),
            Err(MoneyError::Overflow(Currency::USD))
        );
    }
}
