-- ctx.save(): progress, stage, metrics (merged) and checkpoint, fenced by the lease.
-- Returns no row when the lease is lost; cancel_requested tells the handler to stop.
-- The attempt's first save with a progress is remembered (progress_base, _at): the job's
-- own rate for its time remaining is measured from there.
UPDATE nightcrew.jobs
SET progress_base = CASE WHEN %(progress)s::real IS NOT NULL
                          AND (progress_base_at IS NULL OR progress_base_at < started_at)
                         THEN %(progress)s::real ELSE progress_base END,
    progress_base_at = CASE WHEN %(progress)s::real IS NOT NULL
                             AND (progress_base_at IS NULL OR progress_base_at < started_at)
                            THEN now() ELSE progress_base_at END,
    progress = coalesce(%(progress)s, progress),
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
