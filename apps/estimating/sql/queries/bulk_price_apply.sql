-- Raise one batch of catalogue rates by factor, skipping entries this job already changed
-- (the ledger's primary key makes that impossible twice); date the new rates today.
WITH targets AS (
    SELECT c.id, c.rate
    FROM estimating.catalogue AS c
    WHERE c.id = ANY(%(ids)s)
      AND NOT EXISTS (SELECT 1 FROM estimating.bulk_price_changes AS b
                      WHERE b.job_id = %(job_id)s AND b.catalogue_id = c.id)
    FOR UPDATE
), changed AS (
    UPDATE estimating.catalogue AS c
    SET rate = round(t.rate * %(factor)s, 4), updated_at = now()
    FROM targets AS t
    WHERE c.id = t.id
    RETURNING c.id, t.rate AS old_rate, c.rate AS new_rate
), ledger AS (
    INSERT INTO estimating.bulk_price_changes (job_id, catalogue_id, old_rate, new_rate)
    SELECT %(job_id)s, id, old_rate, new_rate FROM changed
), dated AS (
    INSERT INTO estimating.catalogue_rate_history (catalogue_id, effective_from, rate)
    SELECT id, current_date, new_rate FROM changed
    ON CONFLICT (catalogue_id, effective_from) DO UPDATE SET rate = excluded.rate
)
SELECT count(*) FROM changed
