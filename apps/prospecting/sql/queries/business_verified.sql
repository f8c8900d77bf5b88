-- The verifier's verdict on a business's email.
UPDATE prospecting.businesses
SET email_status = %(status)s, verifier_done = true, confidence = %(confidence)s
WHERE campaign_id = %(campaign_id)s AND place_id = %(place_id)s
