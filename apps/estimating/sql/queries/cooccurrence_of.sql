SELECT i.code, i.name, c.confidence_pct, c.together_count
FROM estimating.item_cooccurrence AS c
JOIN estimating.items AS i ON i.id = c.other_item_id
WHERE c.item_id = %(item_id)s
ORDER BY c.confidence_pct DESC, i.code
LIMIT %(limit)s
