-- Discard, step 2 of 2 (caller: lifecycle/control.py): remove the failed jobs that
-- job_discard picked, locked and audited in this transaction.
DELETE FROM nightcrew.jobs WHERE id = ANY(%(ids)s::uuid[]) AND status = 'failed'
RETURNING id
