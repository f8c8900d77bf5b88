-- ctx.limit(): take a slot of one key for a running attempt (nightcrew.limit_acquire,
-- migrations 0015 and 0018; slot_after and period are for the late-entry guard).
SELECT granted, wait, slot_id, slot_after, period
FROM nightcrew.limit_acquire(%(key)s, %(rate_count)s::integer, %(rate_seconds)s::float8,
                             %(concurrency)s::integer, %(job_id)s::uuid, %(attempt)s::integer)
