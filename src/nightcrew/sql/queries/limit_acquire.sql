-- ctx.limit(): take a slot of one key for a running attempt (nightcrew.limit_acquire).
SELECT granted, wait, slot_id
FROM nightcrew.limit_acquire(%(key)s, %(rate_count)s::integer, %(rate_seconds)s::float8,
                             %(concurrency)s::integer, %(job_id)s::uuid, %(attempt)s::integer)
