SELECT (SELECT count(*) FROM estimating.item_popularity) AS items,
       (SELECT count(*) FROM estimating.item_cooccurrence) AS pairs
