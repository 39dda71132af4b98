//! Bus contracts. Every message type knows its exchange, type name and routing key, so no
//! service spells those strings twice. Messages are versioned by package (`billing.v1`).

/// Generated from `proto/billing/v1/*.proto`.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/billing.v1.rs"));
}

/// Exchange names (logical; the platform adds the environment's namespace).
pub mod exchanges {
    /// Verified Stripe events from ingress; routing key = Stripe event type.
    pub const STRIPE_EVENTS: &str = "stripe.events";
    /// Domain facts from the sync worker.
    pub const BILLING: &str = "billing";
    /// Accounts from the CSCX platform.
    pub const CSCX_ACCOUNTS: &str = "cscx.accounts";
    /// Customer ↔ account links from the matcher.
    pub const MATCHING: &str = "matching";
    /// Signals, health and alerts for CSCX.
    pub const RISK: &str = "risk";
    /// Work for the sync worker.
    pub const SYNC_JOBS: &str = "sync.jobs";
}

/// Queue names (logical).
pub mod queues {
    /// Sync worker: every verified Stripe event.
    pub const SYNC_STRIPE_EVENTS: &str = "sync-worker.stripe-events";
    /// Sync worker: backfill / reconcile / refetch jobs.
    pub const SYNC_JOBS: &str = "sync-worker.jobs";
    /// Matcher: CSCX accounts and customer facts.
    pub const MATCHER_ACCOUNTS: &str = "matcher.accounts";
    pub const MATCHER_BILLING: &str = "matcher.billing";
    /// Risk engine: billing facts and matching links.
    pub const RISK_BILLING: &str = "risk-engine.billing";
    pub const RISK_MATCHING: &str = "risk-engine.matching";
    /// Matcher: manual decisions from query-api and billingctl.
    pub const MATCHER_DECISIONS: &str = "matcher.decisions";
    /// Query API: Stripe events that change a connection (`account.application.deauthorized`).
    pub const QUERY_API_CONNECTIONS: &str = "query-api.connections";
}

/// A message type on the bus.
pub trait Contract: prost::Message + Default + Sized {
    /// Fully qualified type name, sent in the AMQP `type` property.
    const TYPE: &'static str;
    /// The exchange it is published on.
    const EXCHANGE: &'static str;
    /// Routing key of this instance.
    fn routing_key(&self) -> String;

    fn decode_bytes(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        Self::decode(bytes)
    }
}

impl Contract for v1::StripeEventReceived {
    const TYPE: &'static str = "billing.v1.StripeEventReceived";
    const EXCHANGE: &'static str = exchanges::STRIPE_EVENTS;
    fn routing_key(&self) -> String {
        self.event_type.clone()
    }
}

/// Billing facts: one routing key per kind, so consumers bind only what they use.
macro_rules! billing_fact {
    ($ty:ident, $name:literal, $key:literal) => {
        impl Contract for v1::$ty {
            const TYPE: &'static str = concat!("billing.v1.", $name);
            const EXCHANGE: &'static str = exchanges::BILLING;
            fn routing_key(&self) -> String {
                $key.to_owned()
            }
        }
    };
}

billing_fact!(CustomerUpserted, "CustomerUpserted", "customer.upserted");
billing_fact!(
    SubscriptionChanged,
    "SubscriptionChanged",
    "subscription.changed"
);
billing_fact!(InvoiceUpdated, "InvoiceUpdated", "invoice.updated");
billing_fact!(
    PaymentMethodUpdated,
    "PaymentMethodUpdated",
    "payment_method.updated"
);

impl Contract for v1::PaymentAttempted {
    const TYPE: &'static str = "billing.v1.PaymentAttempted";
    const EXCHANGE: &'static str = exchanges::BILLING;
    fn routing_key(&self) -> String {
        if self.succeeded {
            "payment.succeeded"
        } else {
            "payment.failed"
        }
        .to_owned()
    }
}

impl Contract for v1::SyncJob {
    const TYPE: &'static str = "billing.v1.SyncJob";
    const EXCHANGE: &'static str = exchanges::SYNC_JOBS;
    fn routing_key(&self) -> String {
        match v1::sync_job::Kind::try_from(self.kind).unwrap_or(v1::sync_job::Kind::Unspecified) {
            v1::sync_job::Kind::Backfill => "backfill",
            v1::sync_job::Kind::Reconcile => "reconcile",
            v1::sync_job::Kind::Refetch => "refetch",
            v1::sync_job::Kind::Unspecified => "unspecified",
        }
        .to_string()
    }
}

impl Contract for v1::CscxAccountUpserted {
    const TYPE: &'static str = "billing.v1.CscxAccountUpserted";
    const EXCHANGE: &'static str = exchanges::CSCX_ACCOUNTS;
    fn routing_key(&self) -> String {
        "account.upserted".into()
    }
}

impl Contract for v1::CscxAccountDeleted {
    const TYPE: &'static str = "billing.v1.CscxAccountDeleted";
    const EXCHANGE: &'static str = exchanges::CSCX_ACCOUNTS;
    fn routing_key(&self) -> String {
        "account.deleted".into()
    }
}

impl Contract for v1::CustomerLinkChanged {
    const TYPE: &'static str = "billing.v1.CustomerLinkChanged";
    const EXCHANGE: &'static str = exchanges::MATCHING;
    fn routing_key(&self) -> String {
        "link.changed".into()
    }
}

impl Contract for v1::ManualDecisionRequested {
    const TYPE: &'static str = "billing.v1.ManualDecisionRequested";
    const EXCHANGE: &'static str = exchanges::MATCHING;
    fn routing_key(&self) -> String {
        "decision.requested".into()
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    fn fact_context() -> Option<v1::FactContext> {
        Some(v1::FactContext {
            tenant_id: "t1".into(),
            account_id: "acct_1".into(),
            occurred_at: 1_700_000_000,
            source: "event".into(),
            event_id: "evt_1".into(),
        })
    }

    /// Golden billing facts: field numbers and types are frozen within `billing.v1`.
    #[test]
    fn golden_billing_facts_decode() {
        let changed = v1::SubscriptionChanged {
            context: fact_context(),
            stripe_customer_id: "cus_1".into(),
            stripe_subscription_id: "sub_1".into(),
            movement: "contraction".into(),
            status_before: "active".into(),
            status_after: "active".into(),
            plan_before: "Pro".into(),
            plan_after: "Basic".into(),
            quantity_before: 10,
            quantity_after: 5,
            mrr_before: 50_000,
            mrr_after: 25_000,
            currency: "usd".into(),
            cancel_at_period_end: true,
            current_period_end: 1_700_500_000,
            canceled_at: 0,
        };
        assert_eq!(
            hex::encode(changed.encode_to_vec()),
            GOLDEN_SUBSCRIPTION_CHANGED
        );
        let decoded =
            v1::SubscriptionChanged::decode(&*hex::decode(GOLDEN_SUBSCRIPTION_CHANGED).unwrap())
                .unwrap();
        assert_eq!(decoded, changed);
        assert_eq!(decoded.routing_key(), "subscription.changed");

        let failed = v1::PaymentAttempted {
            context: fact_context(),
            stripe_customer_id: "cus_1".into(),
            charge_id: "ch_1".into(),
            payment_intent_id: "pi_1".into(),
            stripe_invoice_id: "in_1".into(),
            succeeded: false,
            amount: 4_900,
            currency: "eur".into(),
            failure_code: "card_declined".into(),
            failure_message: "Your card was declined.".into(),
            attempted_at: 1_700_000_100,
        };
        assert_eq!(hex::encode(failed.encode_to_vec()), GOLDEN_PAYMENT_FAILED);
        let decoded =
            v1::PaymentAttempted::decode(&*hex::decode(GOLDEN_PAYMENT_FAILED).unwrap()).unwrap();
        assert_eq!(decoded, failed);
        assert_eq!(decoded.routing_key(), "payment.failed");
        assert_eq!(
            v1::PaymentAttempted {
                succeeded: true,
                ..decoded
            }
            .routing_key(),
            "payment.succeeded"
        );
        for (key, ty) in [
            (
                v1::CustomerUpserted::default().routing_key(),
                v1::CustomerUpserted::TYPE,
            ),
            (
                v1::InvoiceUpdated::default().routing_key(),
                v1::InvoiceUpdated::TYPE,
            ),
            (
                v1::PaymentMethodUpdated::default().routing_key(),
                v1::PaymentMethodUpdated::TYPE,
            ),
        ] {
            assert!(ty.starts_with("billing.v1."), "{ty}");
            assert!(!key.is_empty());
        }
    }

    const GOLDEN_SUBSCRIPTION_CHANGED: &str = "0a200a0274311206616363745f311880e2cfaa0622056576656e742a056576745f3112056375735f311a057375625f31220b636f6e7472616374696f6e2a0661637469766532066163746976653a0350726f42054261736963480a500558d0860360a8c3016a03757364700178a0a4eeaa06";
    const GOLDEN_PAYMENT_FAILED: &str = "0a200a0274311206616363745f311880e2cfaa0622056576656e742a056576745f3112056375735f311a0463685f31220470695f312a04696e5f3138a42642036575724a0d636172645f6465636c696e65645217596f7572206361726420776173206465636c696e65642e58e4e2cfaa06";

    /// A golden message: if a field number or type changes, this fails — contracts are
    /// append-only within a version.
    #[test]
    fn golden_stripe_event_received_decodes() {
        // Built from the fields below; regenerate only with a new package version.
        let expected = v1::StripeEventReceived {
            event_id: "evt_1234567890".into(),
            event_type: "invoice.payment_failed".into(),
            account: "acct_1".into(),
            created: 1_700_000_000,
            livemode: false,
            api_version: "2025-03-31.basil".into(),
            payload: br#"{"id":"evt_1234567890"}"#.to_vec(),
            received_at_ms: 1_700_000_000_123,
            endpoint: "platform".into(),
        };
        let encoded = expected.encode_to_vec();
        assert_eq!(hex::encode(&encoded), GOLDEN_STRIPE_EVENT);
        let decoded =
            v1::StripeEventReceived::decode(&*hex::decode(GOLDEN_STRIPE_EVENT).unwrap()).unwrap();
        assert_eq!(decoded, expected);
        assert_eq!(decoded.routing_key(), "invoice.payment_failed");
    }

    const GOLDEN_STRIPE_EVENT: &str = "0a0e6576745f313233343536373839301216696e766f6963652e7061796d656e745f6661696c65641a06616363745f312080e2cfaa063210323032352d30332d33312e626173696c3a177b226964223a226576745f31323334353637383930227d40fbd095ffbc314a08706c6174666f726d";

    #[test]
    fn sync_job_routing_keys() {
        let job = v1::SyncJob {
            kind: v1::sync_job::Kind::Backfill as i32,
            ..Default::default()
        };
        assert_eq!(job.routing_key(), "backfill");
        let bad = v1::SyncJob {
            kind: 99,
            ..Default::default()
        };
        assert_eq!(bad.routing_key(), "unspecified");
    }
}
