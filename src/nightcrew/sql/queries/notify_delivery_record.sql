-- Record one delivery attempt (sent, failed for good, or pending: retried) and release its
-- claim. Only the attempt holding the claim may record: an attempt whose claim expired and
-- was taken over by another records nothing (no row).
UPDATE nightcrew.deliveries
SET status = %(status)s,
    attempts = attempts + 1,
    last_status_code = %(status_code)s,
    last_error = %(error)s,
    updated_at = now(),
    sent_at = CASE WHEN %(status)s = 'sent' THEN now() END,
    claim = NULL,
    claimed_until = NULL
WHERE id = %(id)s AND claim = %(claim)s
RETURNING id
