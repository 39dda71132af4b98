//! Diesel's view of the `billing` schema (migrations/billing). Written to match the SQL.

diesel::table! {
    billing.stripe_customers (id) {
        id -> Uuid,
        tenant_id -> Text,
        account_id -> Text,
        stripe_customer_id -> Text,
        customer_id -> Nullable<Text>,
        email -> Nullable<Text>,
        name -> Nullable<Text>,
        currency -> Nullable<Text>,
        delinquent -> Bool,
        metadata -> Jsonb,
        default_payment_method -> Nullable<Text>,
        created_at -> Nullable<Timestamptz>,
        deleted_at -> Nullable<Timestamptz>,
        source_created -> Int8,
        synced_at -> Timestamptz,
    }
}

diesel::table! {
    billing.products (tenant_id, account_id, product_id) {
        tenant_id -> Text,
        account_id -> Text,
        product_id -> Text,
        name -> Text,
        active -> Bool,
        source_created -> Int8,
    }
}

diesel::table! {
    billing.prices (tenant_id, account_id, price_id) {
        tenant_id -> Text,
        account_id -> Text,
        price_id -> Text,
        product_id -> Text,
        object -> Jsonb,
        source_created -> Int8,
    }
}

diesel::table! {
    billing.coupons (tenant_id, account_id, coupon_id) {
        tenant_id -> Text,
        account_id -> Text,
        coupon_id -> Text,
        object -> Jsonb,
        source_created -> Int8,
    }
}

diesel::table! {
    billing.stripe_subscriptions (id) {
        id -> Uuid,
        tenant_id -> Text,
        account_id -> Text,
        stripe_customer_id -> Text,
        stripe_subscription_id -> Text,
        status -> Varchar,
        plan_name -> Nullable<Text>,
        mrr_cents -> Int8,
        currency -> Text,
        mrr_error -> Nullable<Text>,
        quantity -> Nullable<Int8>,
        current_period_start -> Nullable<Timestamptz>,
        current_period_end -> Nullable<Timestamptz>,
        cancel_at_period_end -> Bool,
        cancel_at -> Nullable<Timestamptz>,
        canceled_at -> Nullable<Timestamptz>,
        ended_at -> Nullable<Timestamptz>,
        trial_end -> Nullable<Timestamptz>,
        pause_collection -> Bool,
        default_payment_method -> Nullable<Text>,
        latest_invoice -> Nullable<Text>,
        created_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        source_created -> Int8,
    }
}

diesel::table! {
    billing.subscription_items (tenant_id, account_id, stripe_item_id) {
        tenant_id -> Text,
        account_id -> Text,
        stripe_item_id -> Text,
        stripe_subscription_id -> Text,
        price_id -> Text,
        product_id -> Text,
        quantity -> Nullable<Int8>,
        unit_amount -> Nullable<Int8>,
        currency -> Text,
        interval -> Nullable<Text>,
        interval_count -> Nullable<Int4>,
        usage_type -> Nullable<Text>,
        current_period_start -> Nullable<Timestamptz>,
        current_period_end -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    billing.subscription_changes (id) {
        id -> Int8,
        tenant_id -> Text,
        account_id -> Text,
        stripe_subscription_id -> Text,
        stripe_customer_id -> Text,
        changed_at -> Timestamptz,
        source -> Text,
        event_id -> Nullable<Text>,
        movement -> Text,
        status_before -> Nullable<Text>,
        status_after -> Text,
        plan_before -> Nullable<Text>,
        plan_after -> Nullable<Text>,
        quantity_before -> Nullable<Int8>,
        quantity_after -> Nullable<Int8>,
        mrr_before_cents -> Int8,
        mrr_after_cents -> Int8,
        currency -> Text,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    billing.stripe_invoices (id) {
        id -> Uuid,
        tenant_id -> Text,
        account_id -> Text,
        stripe_customer_id -> Text,
        stripe_invoice_id -> Text,
        stripe_subscription_id -> Nullable<Text>,
        number -> Nullable<Text>,
        amount_cents -> Int8,
        amount_paid -> Int8,
        amount_remaining -> Int8,
        total -> Int8,
        currency -> Text,
        status -> Nullable<Varchar>,
        billing_reason -> Nullable<Text>,
        collection_method -> Nullable<Text>,
        due_date -> Nullable<Timestamptz>,
        paid_at -> Nullable<Timestamptz>,
        attempt_count -> Int4,
        next_payment_attempt -> Nullable<Timestamptz>,
        period_start -> Nullable<Timestamptz>,
        period_end -> Nullable<Timestamptz>,
        hosted_invoice_url -> Nullable<Text>,
        created_at -> Nullable<Timestamptz>,
        deleted_at -> Nullable<Timestamptz>,
        source_created -> Int8,
        synced_at -> Timestamptz,
    }
}

diesel::table! {
    billing.invoice_lines (tenant_id, account_id, stripe_invoice_id, line_id) {
        tenant_id -> Text,
        account_id -> Text,
        stripe_invoice_id -> Text,
        line_id -> Text,
        stripe_subscription_id -> Nullable<Text>,
        price_id -> Nullable<Text>,
        description -> Nullable<Text>,
        amount -> Int8,
        currency -> Text,
        quantity -> Nullable<Int8>,
        period_start -> Nullable<Timestamptz>,
        period_end -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    billing.payment_attempts (tenant_id, account_id, charge_id) {
        tenant_id -> Text,
        account_id -> Text,
        charge_id -> Text,
        stripe_customer_id -> Nullable<Text>,
        payment_intent_id -> Nullable<Text>,
        stripe_invoice_id -> Nullable<Text>,
        attempted_at -> Timestamptz,
        amount -> Int8,
        currency -> Text,
        outcome -> Text,
        failure_code -> Nullable<Text>,
        failure_message -> Nullable<Text>,
        attempt_number -> Nullable<Int4>,
        source_created -> Int8,
    }
}

diesel::table! {
    billing.payment_methods (tenant_id, account_id, payment_method_id) {
        tenant_id -> Text,
        account_id -> Text,
        payment_method_id -> Text,
        stripe_customer_id -> Nullable<Text>,
        kind -> Text,
        card_brand -> Nullable<Text>,
        card_last4 -> Nullable<Bpchar>,
        exp_month -> Nullable<Int2>,
        exp_year -> Nullable<Int2>,
        detached_at -> Nullable<Timestamptz>,
        source_created -> Int8,
    }
}

diesel::table! {
    billing.sync_runs (id) {
        id -> Uuid,
        tenant_id -> Text,
        account_id -> Text,
        connection_id -> Uuid,
        kind -> Text,
        status -> Text,
        stage -> Text,
        cursor -> Nullable<Text>,
        objects_done -> Int8,
        requests -> Int8,
        objects_expected -> Nullable<Int8>,
        attempts -> Int4,
        error -> Nullable<Text>,
        started_at -> Timestamptz,
        updated_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    billing.invoice_payments (tenant_id, account_id, invoice_payment_id) {
        tenant_id -> Text,
        account_id -> Text,
        invoice_payment_id -> Text,
        stripe_invoice_id -> Text,
        payment_intent_id -> Nullable<Text>,
        charge_id -> Nullable<Text>,
        status -> Text,
        source_created -> Int8,
    }
}

diesel::table! {
    billing.disputes (tenant_id, account_id, dispute_id) {
        tenant_id -> Text,
        account_id -> Text,
        dispute_id -> Text,
        charge_id -> Text,
        payment_intent_id -> Nullable<Text>,
        stripe_customer_id -> Nullable<Text>,
        amount -> Int8,
        currency -> Text,
        reason -> Text,
        status -> Text,
        evidence_due_by -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        source_created -> Int8,
        synced_at -> Timestamptz,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    stripe_customers,
    products,
    prices,
    coupons,
    stripe_subscriptions,
    subscription_items,
    subscription_changes,
    stripe_invoices,
    invoice_lines,
    invoice_payments,
    payment_attempts,
    payment_methods,
    disputes,
    sync_runs,
);
