-- Lock a delivery for one attempt; a row locked by another attempt in flight is skipped
-- (no row: try again later), so two runners can never send the same delivery at once.
SELECT id, status, attempts
FROM nightcrew.deliveries
WHERE event_key = %(event_key)s AND channel = %(channel)s
FOR UPDATE SKIP LOCKED
