-- Attempts are linked to their invoice by PaymentIntent or, for a charge paid out of band, by
-- the charge itself; the second join had no index, so every charge written scanned all of the
-- account's invoice payments.
CREATE INDEX invoice_payments_charge ON billing.invoice_payments (tenant_id, account_id, charge_id)
    WHERE charge_id IS NOT NULL;
