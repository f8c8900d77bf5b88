-- How many library items a bulk price update selects: the items named, or those using the
-- catalogue entries named, or those matching the filter (items without factors change
-- nothing and are not counted).
SELECT count(DISTINCT i.id)
FROM estimating.items AS i
JOIN estimating.item_factors AS f ON f.item_id = i.id
JOIN estimating.catalogue AS c ON c.id = f.catalogue_id
WHERE (%(catalogue_codes)s::text[] IS NULL OR c.code = ANY(%(catalogue_codes)s::text[]))
  AND (%(item_codes)s::text[] IS NULL OR i.code = ANY(%(item_codes)s::text[]))
  AND (%(kind)s::text IS NULL OR c.kind = %(kind)s::text)
  AND (%(category)s::text IS NULL OR i.category = %(category)s::text)
