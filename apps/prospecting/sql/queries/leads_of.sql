-- A campaign's leads (its qualified businesses), best first.
SELECT place_id, name, address, website, phone, rating, reviews, email, email_status,
       base_score, confidence, finder_done, verifier_done
FROM prospecting.businesses
WHERE campaign_id = %(id)s AND qualified
ORDER BY confidence DESC NULLS LAST, position
