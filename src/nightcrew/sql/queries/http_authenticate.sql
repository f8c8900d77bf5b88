-- Check the key and, in the same statement, make the rest of the transaction act as its
-- user: the nightcrew_api role under row-level security. No live key: SQLSTATE 28000, the
-- transaction is aborted and nothing sent after this statement runs (migration 0016).
SELECT user_id, is_admin, key_id FROM nightcrew.act_as_api_key(%(key_hash)s)
