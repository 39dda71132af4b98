//! Diesel's view of the `integration` schema (see `migrations/integration/`).

diesel::table! {
    integration.connections (id) {
        id -> Uuid,
        tenant_id -> Text,
        kind -> Text,
        account_id -> Text,
        livemode -> Bool,
        secret_hint -> Text,
        secret_sealed -> Bytea,
        secret_key_id -> Text,
        status -> Text,
        created_by -> Text,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    integration.oauth_states (state_hash) {
        state_hash -> Text,
        tenant_id -> Text,
        user_id -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    integration.audit_log (id) {
        id -> Int8,
        tenant_id -> Text,
        actor -> Text,
        action -> Text,
        target -> Nullable<Text>,
        detail -> Jsonb,
        at -> Timestamptz,
    }
}
