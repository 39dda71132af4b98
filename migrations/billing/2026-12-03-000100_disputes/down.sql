DROP VIEW IF EXISTS billing.dispute_history;
DROP TABLE IF EXISTS billing.disputes;
