-- Which payment collects which invoice. Since API version 2025-03-31 (basil) neither a charge
-- nor a PaymentIntent names its invoice; the link is the invoice's `payments` (InvoicePayment:
-- a PaymentIntent, or a charge paid out of band). The sync worker stores these links from
-- invoices fetched with `expand[]=payments` and fills payment_attempts.stripe_invoice_id from
-- them, whichever of the two arrives first.
CREATE TABLE billing.invoice_payments (
    tenant_id          TEXT NOT NULL,
    account_id         TEXT NOT NULL,
    invoice_payment_id TEXT NOT NULL,
    stripe_invoice_id  TEXT NOT NULL,
    payment_intent_id  TEXT,
    charge_id          TEXT,
    status             TEXT NOT NULL,
    source_created     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, account_id, invoice_payment_id),
    CHECK (payment_intent_id IS NOT NULL OR charge_id IS NOT NULL)
);
CREATE INDEX invoice_payments_intent ON billing.invoice_payments (tenant_id, account_id, payment_intent_id)
    WHERE payment_intent_id IS NOT NULL;
CREATE INDEX invoice_payments_invoice ON billing.invoice_payments (tenant_id, account_id, stripe_invoice_id);
