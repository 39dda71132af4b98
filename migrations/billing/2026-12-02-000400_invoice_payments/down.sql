DROP TABLE IF EXISTS billing.invoice_payments;
