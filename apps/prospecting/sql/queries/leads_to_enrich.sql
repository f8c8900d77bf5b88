-- The qualified businesses whose enrichment is not finished, in search order.
SELECT place_id, website, domain, phone, rating, reviews, email, finder_done, verifier_done
FROM prospecting.businesses
WHERE campaign_id = %(id)s AND qualified
  AND (NOT finder_done OR (email IS NOT NULL AND NOT verifier_done))
ORDER BY position
