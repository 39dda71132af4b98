DROP INDEX payment_attempts_intent;
DROP TABLE sync_run_cursors;
