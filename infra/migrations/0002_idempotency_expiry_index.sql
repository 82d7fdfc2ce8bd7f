-- The scheduled purge of expired Idempotency-Key rows (edge/src/idempotency/idempotency.ts, purgeExpired) finds
-- them by expiry.
CREATE INDEX idempotency_expires ON idempotency (expires_at);
