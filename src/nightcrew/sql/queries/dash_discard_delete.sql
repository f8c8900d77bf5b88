-- Remove discarded dead-letter jobs (ids picked and audited by dash_discard_pick).
DELETE FROM nightcrew.jobs WHERE id = ANY(%(ids)s::uuid[]) AND status = 'failed'
RETURNING id
