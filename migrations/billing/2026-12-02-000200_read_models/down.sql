DROP INDEX IF EXISTS billing.payment_attempts_invoice;
DROP INDEX IF EXISTS billing.stripe_invoices_history;
DROP VIEW IF EXISTS billing.payment_attempt_history;
DROP VIEW IF EXISTS billing.invoice_line_items;
DROP VIEW IF EXISTS billing.invoice_history;
DROP VIEW IF EXISTS billing.subscription_history;
DROP VIEW IF EXISTS billing.subscription_overview;
DROP VIEW IF EXISTS billing.customer_profiles;
