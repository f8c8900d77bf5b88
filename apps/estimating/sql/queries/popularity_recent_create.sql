-- The distinct (item, estimate) pairs of the window, for the co-occurrence counts.
CREATE TEMP TABLE popularity_recent (item_id integer, estimate_key bigint) ON COMMIT DROP
