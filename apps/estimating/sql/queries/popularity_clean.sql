-- Items not used in the last 30 days lose their popularity row (this run did not touch it).
DELETE FROM estimating.item_popularity WHERE computed_at <> %(now)s
