-- An item's market unit price averaged per month or quarter since a start date.
SELECT date_trunc(%(period)s, snapshot_date)::date AS period_start,
       avg(unit_price) AS average_price, count(*) AS days
FROM estimating.item_price_snapshots
WHERE item_id = %(item_id)s AND snapshot_date >= %(since)s
GROUP BY 1
ORDER BY 1
