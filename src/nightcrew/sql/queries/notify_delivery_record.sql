-- Record one delivery attempt: sent, failed for good, or pending (retried).
UPDATE nightcrew.deliveries
SET status = %(status)s,
    attempts = attempts + 1,
    last_status_code = %(status_code)s,
    last_error = %(error)s,
    updated_at = now(),
    sent_at = CASE WHEN %(status)s = 'sent' THEN now() END
WHERE id = %(id)s
