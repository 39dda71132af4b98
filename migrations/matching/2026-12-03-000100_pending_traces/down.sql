ALTER TABLE matching.pending DROP COLUMN traceparent;
