-- The W3C traceparent of the change that queued the re-match, so the link change it leads to
-- continues that trace (one Stripe event = one trace, across the re-matcher's own loop).
ALTER TABLE matching.pending ADD COLUMN traceparent TEXT;
