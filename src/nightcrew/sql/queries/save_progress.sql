-- ctx.save(): progress, stage, metrics (merged) and checkpoint, fenced by the lease.
-- Returns no row when the lease is lost; cancel_requested tells the handler to stop.
UPDATE nightcrew.jobs
SET progress = coalesce(%(progress)s, progress),
    stage = coalesce(%(stage)s, stage),
    metrics = CASE WHEN %(metrics)s::jsonb IS NULL THEN metrics
                   ELSE metrics || %(metrics)s::jsonb END,
    checkpoint = CASE WHEN %(set_checkpoint)s THEN %(checkpoint)s::jsonb ELSE checkpoint END,
    updated_at = now()
WHERE id = %(id)s
  AND status = 'processing'
  AND worker_id = %(worker_id)s
  AND attempts = %(attempt)s
RETURNING cancel_requested
