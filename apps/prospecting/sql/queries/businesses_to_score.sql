-- A campaign's businesses not scored yet.
SELECT place_id, website, phone, rating, reviews
FROM prospecting.businesses
WHERE campaign_id = %(id)s AND base_score IS NULL
ORDER BY position
