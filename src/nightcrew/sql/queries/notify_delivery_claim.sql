-- Claim a pending delivery for one attempt unless another attempt's claim is still live.
-- Returns the delivery's id and status, and whether this attempt got the claim: a delivery
-- already sent or failed for good, or claimed by an attempt in flight, is not claimed.
WITH claimed AS (
    UPDATE nightcrew.deliveries
    SET claim = %(claim)s,
        claimed_until = now() + make_interval(secs => %(claim_seconds)s),
        updated_at = now()
    WHERE event_key = %(event_key)s AND channel = %(channel)s
      AND status = 'pending'
      AND (claimed_until IS NULL OR claimed_until < now())
    RETURNING id
)
SELECT d.id, d.status, claimed.id IS NOT NULL AS claimed
FROM nightcrew.deliveries AS d
LEFT JOIN claimed ON claimed.id = d.id
WHERE d.event_key = %(event_key)s AND d.channel = %(channel)s
