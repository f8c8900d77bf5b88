-- Wake workers of these queues (used after COPY, which fires no per-row logic).
SELECT pg_notify('nightcrew_jobs', q)::text FROM unnest(%(queues)s::text[]) AS q
