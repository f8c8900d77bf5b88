-- The lines of an archived estimate, in the order they were added.
SELECT i.code, i.name, i.unit, u.quantity, u.used_at
FROM estimating.usage_archive AS u
JOIN estimating.items AS i ON i.id = u.item_id
WHERE u.estimate_key = %(key)s
ORDER BY u.used_at, u.id
