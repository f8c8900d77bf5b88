INSERT INTO popularity_recent (item_id, estimate_key)
SELECT DISTINCT item_id, estimate_key
FROM estimating.usage
WHERE used_at > %(now)s - interval '30 days' AND used_at <= %(now)s
