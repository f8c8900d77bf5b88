-- The email finder's answer for a business.
UPDATE prospecting.businesses
SET email = %(email)s, finder_done = true, confidence = %(confidence)s
WHERE campaign_id = %(campaign_id)s AND place_id = %(place_id)s
