DELETE FROM estimating.item_factors WHERE item_id = %(item_id)s
