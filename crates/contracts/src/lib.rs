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

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

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
