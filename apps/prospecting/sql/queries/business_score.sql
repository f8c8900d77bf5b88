-- A business's base score, whether it qualifies, and its confidence so far.
UPDATE prospecting.businesses
SET base_score = %(score)s, qualified = %(qualified)s, confidence = %(score)s
WHERE campaign_id = %(campaign_id)s AND place_id = %(place_id)s
