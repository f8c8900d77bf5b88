-- The catalogue entries a bulk update job changed (its ledger: every attempt's batches).
SELECT count(*) FROM estimating.bulk_price_changes WHERE job_id = %(job_id)s
