-- Enable or disable; enabling restarts from the next fire time (no catch-up of the ticks
-- that passed while disabled).
UPDATE nightcrew.schedules
SET next_run_at = CASE WHEN %(enabled)s AND NOT enabled THEN %(next_run_at)s
                       ELSE next_run_at END,
    deferrals = CASE WHEN %(enabled)s AND NOT enabled THEN 0 ELSE deferrals END,
    deferred_from = CASE WHEN %(enabled)s AND NOT enabled THEN NULL ELSE deferred_from END,
    enabled = %(enabled)s,
    updated_at = now()
WHERE name = %(name)s
