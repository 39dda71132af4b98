//! Diesel's view of the `ingress` schema (see `migrations/ingress/`).

diesel::table! {
    ingress.events (id) {
        id -> Int8,
        event_id -> Text,
        tenant_id -> Nullable<Text>,
        endpoint -> Text,
        account -> Nullable<Text>,
        event_type -> Text,
        created -> Timestamptz,
        livemode -> Bool,
        api_version -> Nullable<Text>,
        payload -> Text,
        traceparent -> Nullable<Text>,
        received_at -> Timestamptz,
        published_at -> Nullable<Timestamptz>,
    }
}
