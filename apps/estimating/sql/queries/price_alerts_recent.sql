SELECT c.code, c.name, a.period_start, a.previous_rate, a.current_rate, a.change_pct,
       a.message, a.created_at
FROM estimating.price_alerts AS a
JOIN estimating.catalogue AS c ON c.id = a.catalogue_id
ORDER BY a.created_at DESC, c.code
LIMIT %(limit)s
