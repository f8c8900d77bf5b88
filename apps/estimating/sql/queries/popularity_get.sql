SELECT usage_count_30d, unique_projects, avg_quantity, trend, trend_pct, popularity_score,
       computed_at
FROM estimating.item_popularity
WHERE item_id = %(item_id)s
