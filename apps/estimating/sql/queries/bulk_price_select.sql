-- The catalogue entries a bulk price update changes, each once, in a stable order.
SELECT DISTINCT c.id
FROM estimating.catalogue AS c
LEFT JOIN estimating.item_factors AS f ON f.catalogue_id = c.id
LEFT JOIN estimating.items AS i ON i.id = f.item_id
WHERE (%(catalogue_codes)s::text[] IS NULL OR c.code = ANY(%(catalogue_codes)s::text[]))
  AND (%(item_codes)s::text[] IS NULL OR i.code = ANY(%(item_codes)s::text[]))
  AND (%(kind)s::text IS NULL OR c.kind = %(kind)s::text)
  AND (%(category)s::text IS NULL OR i.category = %(category)s::text)
ORDER BY c.id
