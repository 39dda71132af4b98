DROP VIEW billing.payment_patterns;
DROP FUNCTION billing.payment_patterns_at(TIMESTAMPTZ);
