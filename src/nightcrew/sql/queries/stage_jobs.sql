-- Staging table for bulk enqueue of jobs carrying dedupe keys (filled with COPY).
CREATE TEMP TABLE IF NOT EXISTS nightcrew_staged_jobs (
    id uuid, type text, queue text, payload jsonb, priority integer, run_at timestamptz,
    max_attempts integer, timeout_seconds double precision, dedupe_key text, user_id text,
    notify jsonb, ord integer, dedupe_scope text
) ON COMMIT DELETE ROWS
