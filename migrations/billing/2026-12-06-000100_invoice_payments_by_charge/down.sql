DROP INDEX billing.invoice_payments_charge;
